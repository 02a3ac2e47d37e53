/** Vite's `?url` imports (a served asset's URL), typed here: workers/ does not load vite/client's DOM-side types. */
declare module '*?url' {
  const url: string;
  export default url;
}

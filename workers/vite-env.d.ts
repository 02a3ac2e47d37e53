/** Vite's `?url` imports (a served asset's URL), typed here: workers/ does not load vite/client's DOM-side types. */
declare module '*?url' {
  const url: string;
  export default url;
}

/** What the workers read of Vite's `import.meta.env` (the same declarations as vite/client's). */
interface ImportMetaEnv {
  readonly DEV: boolean;
}
interface ImportMeta {
  readonly env: ImportMetaEnv;
}

/**
 * Stands in for the `sharp` package's types in the browser-side projects (models/, workers/, app/;
 * their tsconfig `paths`). transformers.js' types name sharp (`RawImage.toSharp()`, Node only),
 * and sharp's types pull in all of @types/node: with this stub, `process`, `Buffer` and node:*
 * stay compile errors there. We never call toSharp().
 */
export type Sharp = never;

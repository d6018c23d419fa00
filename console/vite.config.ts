import { defineConfig } from "vite";

// @meridian/contracts resolves to its TypeScript source, as everywhere in the repository: the console needs no
// contracts build, and what it bundles is exactly the generated code of this checkout.
export default defineConfig({
  resolve: { conditions: ["@meridian/source", "browser", "module", "import", "default"] },
  oxc: { jsx: { runtime: "automatic", importSource: "preact" } },
  build: { target: "es2022", outDir: "dist", emptyOutDir: true, reportCompressedSize: true },
  server: {
    // `npm run dev`: the API of a gateway on localhost:8080 under the dev server's origin.
    proxy: { "^/meridian\\.": "http://127.0.0.1:8080" },
  },
});

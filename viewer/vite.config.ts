// Build the viewer into the Python package with fixed file names, so the committed build is byte-for-byte
// reproducible (CI rebuilds it and diffs against src/dinoscope/viewer/static).
import { defineConfig } from "vite";

export default defineConfig({
  base: "./",
  build: {
    outDir: "../src/dinoscope/viewer/static",
    emptyOutDir: true,
    target: "es2022",
    modulePreload: false,
    reportCompressedSize: false,
    rollupOptions: {
      output: {
        entryFileNames: "assets/viewer.js",
        chunkFileNames: "assets/[name].js",
        assetFileNames: "assets/[name][extname]",
      },
    },
  },
});

import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

// Served by vorg under /console/ (embedded in the binary); `npm run dev` proxies the API.
export default defineConfig({
  base: "/console/",
  plugins: [react()],
  build: {
    outDir: "dist",
    assetsDir: "assets",
    sourcemap: false,
    chunkSizeWarningLimit: 400,
  },
  server: {
    proxy: Object.fromEntries(
      ["/auth", "/runs", "/streams", "/approvals", "/workflows", "/meetings", "/ops", "/usage",
        "/budgets", "/personas", "/org", "/governance", "/artifacts", "/schedules", "/triggers", "/webhooks",
        "/openapi.json"].map(
        (p) => [p, "http://127.0.0.1:8000"],
      ),
    ),
  },
  test: {
    environment: "happy-dom",
    include: ["src/**/*.test.tsx", "src/**/*.test.ts"],
  },
});

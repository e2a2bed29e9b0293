// The console's cost in a real browser (make bench): time to the first render of the
// dashboard with its data against a large database, and the live log page holding many lines.
// Usage: node e2e/bench.mjs BASE_URL EMAIL PASSWORD LOG_RUN_ID LOG_LINES  → JSON on stdout.
import { chromium } from "playwright-core";

const [base, email, password, logRun, logLines] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox"],
});
const login = await fetch(`${base}/auth/login`, {
  method: "POST",
  headers: { "content-type": "application/json" },
  body: JSON.stringify({ email, password, cookie: true }),
});
const cookie = (login.headers.get("set-cookie") ?? "").split(";")[0];
const [name, value] = cookie.split("=");
const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
await ctx.addCookies([{ name, value, url: base }]);

async function dashboard(page) {
  const t0 = Date.now();
  await page.goto(`${base}/console/`);
  await page.locator(".counts li").first().waitFor({ timeout: 60_000 });
  await page.getByRole("heading", { name: "Spend against budgets" }).waitFor();
  return Date.now() - t0;
}

const page = await ctx.newPage();
const cold = await dashboard(page);
const warm = [];
for (let i = 0; i < 3; i++) warm.push(await dashboard(page));

const t0 = Date.now();
await page.goto(`${base}/console/runs/${logRun}`);
await page.getByText(new RegExp(`— ${logLines} lines`)).waitFor({ timeout: 120_000 });
const logMs = Date.now() - t0;
// Scroll through the whole log in steps, one frame each: the time per step is what a user
// dragging the scrollbar feels.
const scroll = await page.evaluate(async () => {
  const el = document.querySelector('[role="log"]');
  const frame = () => new Promise((r) => requestAnimationFrame(() => r()));
  el.scrollTop = 0;
  await frame();
  const steps = 100;
  const stride = el.scrollHeight / steps;
  const t = performance.now();
  for (let i = 1; i <= steps; i++) {
    el.scrollTop = i * stride;
    await frame();
  }
  return { steps, ms_per_step: (performance.now() - t) / steps, rendered_rows: el.querySelectorAll(".line").length };
});
await browser.close();
console.log(JSON.stringify({
  dashboard_first_render_ms_cold: cold,
  dashboard_first_render_ms_warm: warm.sort((a, b) => a - b)[1],
  log_page_ms_to_all_lines: logMs,
  log_lines: Number(logLines),
  log_scroll_ms_per_frame: Math.round(scroll.ms_per_step * 10) / 10,
  log_rows_in_dom: scroll.rendered_rows,
}));

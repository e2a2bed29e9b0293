// End-to-end tests of the console in a real headless browser (Debian's chromium driven by
// playwright-core) against a real vorg on a fresh SQLite data directory.
// `npm run e2e` (make test runs it). VORG_BIN picks the binary (default target/debug/vorg);
// CHROMIUM the browser (default /usr/bin/chromium). Screenshots go to console/screenshots/.
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const root = new URL("../..", import.meta.url).pathname;
const bin = process.env.VORG_BIN ?? join(root, "target/debug/vorg");
const browserPath = process.env.CHROMIUM ?? "/usr/bin/chromium";
const shots = new URL("../screenshots", import.meta.url).pathname;
const PASSWORD = "correct horse battery";

const freePort = () =>
  new Promise((resolve) => {
    const s = createServer();
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });

async function startVorg(data, port) {
  // The simulated provider costs something here, so usage pages have amounts to show.
  const pricing = join(data, "pricing.yaml");
  writeFileSync(pricing, "models:\n  simulated/sim-1: { input: 3.0, output: 15.0 }\n");
  const env = { PATH: process.env.PATH, VORG_DATA_DIR: data, VORG_CONFIG: join(data, "absent.toml"),
    VORG_PRICING_FILE: pricing, RUST_LOG: "warn" };
  const proc = spawn(bin, ["serve", "--bind", `127.0.0.1:${port}`], { env, stdio: ["ignore", "ignore", "inherit"] });
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 300; i++) {
    try {
      if ((await fetch(`${base}/health`)).ok) return { proc, base, env };
    } catch {}
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error("vorg did not start");
}

const tests = [];
const shared = {};
const test = (name, fn) => tests.push({ name, fn });

async function login(page, base, email) {
  await page.goto(`${base}/console/`);
  await page.getByLabel("E-mail").fill(email);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Log in" }).click();
  await page.getByRole("navigation", { name: "Main" }).waitFor();
}

test("first run: the admin account is created, then the dashboard shows", async ({ browser, base }) => {
  const page = await browser.newPage();
  await page.goto(`${base}/`);
  await page.getByRole("heading", { name: "Create the admin account" }).waitFor();
  await page.screenshot({ path: join(shots, "setup.png") });
  await page.getByLabel("E-mail").fill("admin@example.com");
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Create and log in" }).click();
  await page.getByRole("heading", { name: "Runs today" }).waitFor();
  await page.getByText("admin@example.com (admin)").waitFor();
  await page.screenshot({ path: join(shots, "dashboard.png"), fullPage: true });
  // The session is an HttpOnly cookie: scripts cannot read it.
  const visible = await page.evaluate(() => document.cookie);
  if (visible.includes("vorg_session")) throw new Error("the session cookie is readable by scripts");
  // Light and dark themes: the system's by default, switchable.
  const bg = () => page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  await page.getByRole("button", { name: /^Theme: system/ }).click();
  const light = await bg();
  await page.getByRole("button", { name: /^Theme: light/ }).click();
  const dark = await bg();
  if (light === dark) throw new Error(`the themes look the same: ${light}`);
  await page.screenshot({ path: join(shots, "dashboard-dark.png"), fullPage: true });
  await page.getByRole("button", { name: /^Theme: dark/ }).click();
  await page.getByRole("button", { name: "Log out" }).click();
  await page.getByRole("heading", { name: "Log in to vorg" }).waitFor();
  await page.close();
});

test("a stand-up's log arrives live, then its minutes", async ({ browser, base }) => {
  const page = await browser.newPage();
  await login(page, base, "admin@example.com");
  await page.getByRole("link", { name: "Meetings" }).click();
  await page.getByLabel("Stand-up").check();
  await page.screenshot({ path: join(shots, "meetings.png"), fullPage: true });
  await page.getByRole("button", { name: "Start stand-up" }).click();
  await page.waitForURL(/\/console\/runs\/\d+$/);
  shared.standupRun = page.url().split("/").pop();
  const log = page.getByRole("log", { name: "Run log" });
  await log.getByText(/spoke \(simulated\//).first().waitFor();
  await page.getByRole("heading", { name: "Minutes" }).waitFor({ timeout: 30_000 });
  await page.getByText(/Log: done/).waitFor();
  await page.screenshot({ path: join(shots, "run.png"), fullPage: true });
  await page.getByRole("link", { name: "Runs" }).click();
  await page.getByRole("cell", { name: /standup/ }).first().waitFor();
  // Server-side filters: a type with no runs empties the list, today's date keeps it.
  await page.getByLabel("Type").fill("hiring_plan");
  await page.getByText("No runs match.").waitFor();
  await page.getByLabel("Type").fill("");
  await page.getByLabel("From").fill(new Date().toLocaleDateString("en-CA"));
  await page.getByRole("cell", { name: /standup/ }).first().waitFor();
  await page.screenshot({ path: join(shots, "runs.png"), fullPage: true });
  await page.close();
});

test("an engineer asks for a spend, an approver approves it, the engineer cannot", async ({ browser, base, env }) => {
  for (const [email, role] of [["eng@example.com", "engineer"], ["appr@example.com", "approver"]]) {
    execFileSync(bin, ["user", "create", "--email", email, "--role", role],
      { env: { ...env, VORG_USER_PASSWORD: PASSWORD }, stdio: "ignore" });
  }
  const eng = await (await browser.newContext()).newPage();
  await login(eng, base, "eng@example.com");
  await eng.getByRole("link", { name: "Approvals" }).click();
  await eng.getByLabel("What for").fill("Load-test cluster");
  await eng.getByLabel("Amount (USD)").fill("120");
  await eng.getByLabel("Justification").fill("release week");
  await eng.getByRole("button", { name: "Submit" }).click();
  await eng.getByRole("status").getByText(/pending \(tier approver\)/).waitFor();
  const mine = eng.getByRole("article", { name: /Load-test cluster/ });
  await mine.getByText("You requested this: someone else must decide it.").waitFor();
  if ((await mine.getByRole("button", { name: "Approve" }).count()) !== 0) {
    throw new Error("the requester is offered to approve their own request");
  }
  // A bad amount: the API's problem shows beside the form, naming the field.
  await eng.getByLabel("What for").fill("Nothing");
  await eng.getByLabel("Amount (USD)").fill("-5");
  await eng.getByRole("button", { name: "Submit" }).click();
  await eng.getByRole("alert").getByText("amount_usd", { exact: true }).waitFor();

  const appr = await (await browser.newContext()).newPage();
  await login(appr, base, "appr@example.com");
  await appr.getByRole("link", { name: "Approvals" }).click();
  const card = appr.getByRole("article", { name: /Load-test cluster/ });
  await card.getByLabel("Comment").fill("go ahead");
  await appr.screenshot({ path: join(shots, "approvals.png"), fullPage: true });
  await card.getByRole("button", { name: "Approve" }).click();
  await appr.getByRole("cell", { name: "go ahead" }).waitFor();
  await eng.reload();
  await eng.getByRole("cell", { name: "go ahead" }).waitFor();
  await eng.context().close();
  await appr.context().close();
});

test("a workflow is saved from the editor and run", async ({ browser, base }) => {
  const page = await browser.newPage();
  await login(page, base, "admin@example.com");
  await page.getByRole("link", { name: "Workflows" }).click();
  const editor = page.getByLabel("Workflow definition");
  const good = await editor.inputValue();
  await editor.fill(good.replace("depends_on: [draft]", "depends_on: [drafts]"));
  await page.getByRole("button", { name: "Save as a new version" }).click();
  await page.getByRole("alert").getByText("steps[1].depends_on", { exact: true }).waitFor();
  // The problem is shown at its line, and the preview follows the text as it is typed.
  await page.getByRole("list", { name: "Problems" }).getByText(/^line 12: /).first().waitFor();
  await page.getByRole("img", { name: "Workflow graph" }).locator('[aria-label="review: pending"]').waitFor();
  await editor.fill(good);
  await page.getByRole("button", { name: "Save as a new version" }).click();
  await page.getByRole("status").getByText("Saved review version 1").waitFor();
  await page.screenshot({ path: join(shots, "workflows.png"), fullPage: true });
  await page.getByRole("row", { name: /review/ }).getByRole("button", { name: "Run" }).click();
  await page.waitForURL(/\/console\/runs\/\d+$/);
  await page.getByText(/Log: done/).waitFor({ timeout: 30_000 });
  await page.getByRole("heading", { name: /succeeded/ }).waitFor();
  // The run's DAG with each step's state, and what each step cost.
  await page.getByRole("img", { name: "Workflow graph" }).locator('[aria-label="review: succeeded"]').waitFor();
  await page.getByRole("heading", { name: "Cost and tokens" }).waitFor();
  await page.getByRole("row", { name: /^draft cto\.org\.v1 1 / }).waitFor();
  await page.screenshot({ path: join(shots, "workflow-run.png"), fullPage: true });
  await page.close();
});

test("the usage chart shows the stand-up's cost", async ({ browser, base }) => {
  const page = await browser.newPage();
  await login(page, base, "admin@example.com");
  await page.getByRole("link", { name: "Usage" }).click();
  await page.getByLabel("Group by").selectOption("run");
  const chart = page.getByRole("img", { name: "Cost per group" });
  await chart.waitFor();
  const row = page.getByRole("row", { name: new RegExp(`^${shared.standupRun} `) });
  const cost = await row.getByRole("cell").last().innerText();
  if (!/^\$0\.\d*[1-9]/.test(cost)) throw new Error(`the run's cost is ${cost}`);
  await chart.getByText(cost).waitFor();
  await page.screenshot({ path: join(shots, "usage.png"), fullPage: true });
  // The dashboard's burn rate: spend so far this month and its month-end projection.
  await page.getByRole("link", { name: "Dashboard" }).click();
  await page.getByRole("img", { name: "Cumulative spend this month with projection" }).waitFor();
  await page.getByText(/^\$0\.\d+ so far; at this rate \$\d+\.\d+ by month end/).waitFor();
  await page.close();
});

test("an API token is shown once, then revoked", async ({ browser, base }) => {
  const page = await browser.newPage();
  await login(page, base, "admin@example.com");
  await page.getByRole("link", { name: "Admin" }).click();
  await page.getByLabel("Token name").fill("ci-agent");
  await page.getByRole("button", { name: "Create token" }).click();
  const secret = await page.getByRole("status").locator("code").innerText();
  if (!secret.startsWith("vorg_")) throw new Error(`not a token: ${secret}`);
  const me = (token) => fetch(`${base}/auth/me`, { headers: { authorization: `Bearer ${token}` } });
  if ((await me(secret)).status !== 200) throw new Error("the new token does not work");
  // Its limits are edited in place and hold at once.
  await page.getByRole("button", { name: "Limits of ci-agent" }).click();
  const form = page.getByRole("form", { name: "Limits of token ci-agent" });
  await form.getByText(/Spent today \$0/).waitFor();
  await form.getByLabel("Requests per minute").fill("2");
  await form.getByLabel("Models (comma-separated patterns)").fill("simulated/*");
  await form.getByRole("button", { name: "Save limits" }).click();
  await page.getByRole("row", { name: /ci-agent/ }).getByText("models simulated/*; 2 req/min").waitFor();
  await page.screenshot({ path: join(shots, "admin.png"), fullPage: true });
  const statuses = [];
  for (let i = 0; i < 5; i++) statuses.push((await me(secret)).status);
  if (statuses[0] !== 200 || !statuses.includes(429)) throw new Error(`the rate limit did not hold: ${statuses}`);
  await page.getByRole("button", { name: "Revoke ci-agent" }).click();
  await page.getByRole("row", { name: /ci-agent/ }).getByText(/^revoked/).waitFor();
  await page.reload();
  if ((await page.getByText(secret).count()) !== 0) throw new Error("the secret is shown again");
  if ((await me(secret)).status !== 401) throw new Error("the revoked token still works");
  await page.close();
});

test("a persona edit is refused with the field's error at the field", async ({ browser, base }) => {
  const page = await browser.newPage();
  await login(page, base, "admin@example.com");
  await page.getByRole("link", { name: "Organization" }).click();
  await page.screenshot({ path: join(shots, "organization.png"), fullPage: true });
  await page.getByRole("link", { name: "Maya Okafor" }).click();
  const title = page.getByLabel("Title");
  await title.fill("x".repeat(201));
  await page.getByRole("button", { name: "Save" }).click();
  await page.locator("#err-title").getByText(/^title: /).waitFor();
  if ((await title.getAttribute("aria-invalid")) !== "true") throw new Error("not marked invalid");
  await page.screenshot({ path: join(shots, "persona.png"), fullPage: true });
  await title.fill("Chief Executive Officer");
  await page.getByRole("button", { name: "Save" }).click();
  await page.getByRole("status").getByText(/^Saved version \d+/).waitFor();
  await page.close();
});

test("governance refuses a broken policy with its reason, artifacts find the minutes", async ({ browser, base }) => {
  const page = await browser.newPage();
  await login(page, base, "admin@example.com");
  await page.getByRole("link", { name: "Governance" }).click();
  const policies = page.getByLabel("Policies (YAML)");
  await page.getByRole("heading", { name: /Policies \(version \d+/ }).waitFor();
  await policies.fill("spend_thresholds: [\n");
  await page.getByRole("button", { name: "Validate and save" }).click();
  await page.getByRole("alert").waitFor();
  await page.screenshot({ path: join(shots, "governance.png"), fullPage: true });
  await page.getByRole("link", { name: "Artifacts" }).click();
  await page.getByLabel("Search").fill("Stand-up");
  await page.getByRole("button", { name: "Search" }).click();
  await page.getByRole("link", { name: /^standup-.*\.md$/ }).first().click();
  await page.getByRole("heading", { name: /Stand-up/ }).first().waitFor();
  await page.screenshot({ path: join(shots, "artifact.png"), fullPage: true });
  for (const [name, file] of [["Hiring", "hiring"], ["Linear", "linear"], ["Dashboard", "dashboard-after"]]) {
    await page.getByRole("link", { name }).click();
    await page.getByRole("heading", { level: name === "Dashboard" ? 2 : 1 }).first().waitFor();
    await page.screenshot({ path: join(shots, `${file}.png`), fullPage: true });
  }
  await page.close();
});

test("schedules show their next slots; a webhook's secret shows once; a test delivery is logged", async ({ browser, base }) => {
  const page = await browser.newPage();
  await login(page, base, "admin@example.com");
  await page.getByRole("link", { name: "Automation" }).click();
  await page.getByRole("heading", { name: "Automation", level: 1 }).waitFor();
  const form = page.getByRole("form", { name: "New schedule" });
  await form.getByLabel("Schedule name").fill("every minute");
  await form.getByLabel(/^Cron/).fill("* * * * *");
  await form.getByLabel("Time zone").fill("Europe/Berlin");
  await form.getByLabel(/^Target/).selectOption("meeting");
  await form.getByLabel("Meeting type").selectOption("standup");
  await form.getByLabel("Meeting body (JSON)").fill('{"today": ["e2e"]}');
  await form.getByRole("button", { name: "Create schedule" }).click();
  const row = page.getByRole("table", { name: "Schedules" }).getByRole("row", { name: /every minute/ });
  await row.waitFor();
  const next = await row.getByRole("cell").nth(3).innerText();
  if (!/\d/.test(next)) throw new Error(`no next slot shown: ${next}`);
  await row.getByRole("link", { name: "every minute" }).click();
  await page.getByRole("heading", { name: "every minute", level: 1 }).waitFor();
  const slots = page.getByRole("table", { name: "Next slots" }).locator("tbody").getByRole("row");
  await slots.first().waitFor();
  if ((await slots.count()) !== 5) throw new Error(`${await slots.count()} next slots shown`);
  await page.getByRole("columnheader", { name: "In Europe/Berlin" }).waitFor();
  await page.screenshot({ path: join(shots, "schedule.png"), fullPage: true });
  // Paused, so that it stops starting a stand-up every minute for the tests after this one.
  await page.getByRole("button", { name: "Pause" }).click();
  await page.getByText("None while paused.").waitFor();
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Automation" }).click();
  await page.getByRole("tab", { name: "Webhooks" }).click();
  const hook = page.getByRole("form", { name: "New webhook" });
  await hook.getByLabel("Webhook name").fill("ops");
  await hook.getByLabel("URL").fill("https://example.com/hook");
  await hook.getByLabel("run.failed", { exact: true }).check();
  await hook.getByRole("button", { name: "Create webhook" }).click();
  const notice = page.getByRole("status").filter({ hasText: "will not be shown again" });
  const secret = await notice.locator("code").innerText();
  if (!secret.startsWith("whsec_")) throw new Error(`not a webhook secret: ${secret}`);
  await page.getByRole("button", { name: "I have copied it" }).click();
  await notice.waitFor({ state: "detached" });
  if ((await page.getByText(secret).count()) !== 0) throw new Error("the secret is still shown");
  if ((await page.content()).includes(secret)) throw new Error("the secret is still in the page");
  await page.getByRole("table", { name: "Webhooks" }).getByRole("link", { name: "ops", exact: true }).click();
  await page.getByRole("heading", { name: "ops", level: 1 }).waitFor();
  await page.getByRole("button", { name: "Send test" }).click();
  await page.getByRole("table", { name: "Deliveries" }).getByRole("button", { name: "webhook.test", exact: true }).first().waitFor();
  await page.screenshot({ path: join(shots, "automation.png"), fullPage: true });
  if ((await page.content()).includes(secret)) throw new Error("the secret is shown again");
  await page.close();
});

test("the console is usable at phone width", async ({ browser, base }) => {
  const ctx = await browser.newContext({ viewport: { width: 390, height: 844 } });
  const page = await ctx.newPage();
  await login(page, base, "admin@example.com");
  await page.getByRole("link", { name: "Approvals" }).click();
  await page.getByRole("heading", { name: "Approvals" }).waitFor();
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  if (overflow > 40) throw new Error(`the page is ${overflow}px wider than the screen`);
  await page.screenshot({ path: join(shots, "phone-approvals.png"), fullPage: true });
  await ctx.close();
});

async function main() {
  rmSync(shots, { recursive: true, force: true });
  mkdirSync(shots, { recursive: true });
  const data = mkdtempSync(join(tmpdir(), "vorg-e2e-"));
  const port = await freePort();
  const { proc, base, env } = await startVorg(data, port);
  const browser = await chromium.launch({ executablePath: browserPath, headless: true,
    args: ["--no-sandbox"] });
  const errors = [];
  let failed = 0;
  try {
    for (const t of tests) {
      const started = Date.now();
      try {
        const ctx = { browser, base, env };
        await t.fn(ctx);
        console.log(`ok   ${t.name} (${Date.now() - started} ms)`);
      } catch (e) {
        failed++;
        console.log(`FAIL ${t.name}\n     ${String(e?.stack ?? e).split("\n").slice(0, 6).join("\n     ")}`);
      }
    }
  } finally {
    await browser.close();
    proc.kill("SIGTERM");
    rmSync(data, { recursive: true, force: true });
  }
  for (const e of errors) console.log(e);
  console.log(`${tests.length - failed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});

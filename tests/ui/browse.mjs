// Opens pages of MLflow's web UI in Debian's Chromium (playwright-core, no downloaded browser) and
// reports, per page: every request answered >= 400, uncaught page errors, which expected texts are
// visible, and a screenshot. Usage:
//   node browse.mjs PLAN.json OUT_DIR
// PLAN: {"base": "http://127.0.0.1:5000", "auth": ["user", "pass"] | null,
//        "pages": [{"name": "experiments", "path": "/#/experiments", "expect": ["text", ...],
//                   "click": "button text" (optional: clicked after the checks, then "after" texts
//                   are looked for on the page it leads to, saved as <name>-after.png)}, ...]}
// Writes OUT_DIR/report.json and OUT_DIR/<name>.png.
import { chromium } from "playwright-core";
import { readFileSync, writeFileSync, mkdirSync } from "node:fs";

const [planFile, outDir] = process.argv.slice(2);
const plan = JSON.parse(readFileSync(planFile, "utf8"));
mkdirSync(outDir, { recursive: true });

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});
const context = await browser.newContext({
  viewport: { width: 1400, height: 900 },
  httpCredentials: plan.auth ? { username: plan.auth[0], password: plan.auth[1] } : undefined,
});
const report = [];
for (const page of plan.pages) {
  const p = await context.newPage();
  const failed = [];
  const errors = [];
  const requests = [];
  p.on("response", (r) => {
    const url = new URL(r.url());
    if (!url.href.startsWith(plan.base)) return;
    requests.push(`${r.request().method()} ${url.pathname} ${r.status()}`);
    if (r.status() >= 400) failed.push({ method: r.request().method(), path: url.pathname, status: r.status() });
  });
  p.on("pageerror", (e) => errors.push(String(e)));
  let loadError = null;
  try {
    // Not "networkidle": the UI keeps polling, on mlflow server as here.
    await p.goto(plan.base + page.path, { waitUntil: "load", timeout: 60000 });
  } catch (e) {
    loadError = String(e);
  }
  const visible = {};
  for (const text of page.expect || []) {
    try {
      await p.getByText(text, { exact: false }).first().waitFor({ state: "visible", timeout: 20000 });
      visible[text] = true;
    } catch {
      visible[text] = false;
    }
  }
  // Let late calls (charts, artifact lists) go out and come back before judging.
  await p.waitForLoadState("networkidle", { timeout: 5000 }).catch(() => {});
  await p.screenshot({ path: `${outDir}/${page.name}.png`, fullPage: !!page.fullPage });
  const after = {};
  let afterUrl = null;
  if (page.click) {
    try {
      await Promise.all([
        p.waitForNavigation({ waitUntil: "load", timeout: 120000 }),
        p.getByRole("button", { name: page.click }).first().click({ timeout: 10000 }),
      ]);
      afterUrl = p.url();
    } catch (e) {
      errors.push(`clicking "${page.click}": ${e}`);
    }
    for (const text of page.after || []) {
      after[text] = await p.getByText(text, { exact: false }).first().isVisible().catch(() => false);
    }
    await p.screenshot({ path: `${outDir}/${page.name}-after.png`, fullPage: true });
  }
  report.push({ name: page.name, path: page.path, loadError, failed, errors, visible, requests, afterUrl, after });
  await p.close();
}
await browser.close();
writeFileSync(`${outDir}/report.json`, JSON.stringify(report, null, 2));

// Gives a model version an alias through MLflow's web UI, as an operator does: the version page,
// "Add/Edit aliases", type the alias, Enter, "Save aliases". Usage:
//   node alias.mjs BASE MODEL VERSION ALIAS OUT.png [USER PASSWORD]
// Prints JSON: {"calls": ["POST /ajax-api/... 200", ...], "closed": bool, "text": "<dialog text if still open>"}.
import { chromium } from "playwright-core";

const [base, model, version, alias, shot, user, password] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});
const context = await browser.newContext({
  viewport: { width: 1400, height: 900 },
  httpCredentials: user ? { username: user, password } : undefined,
});
const p = await context.newPage();
const calls = [];
p.on("response", (r) => {
  if (r.request().method() !== "GET") calls.push(`${r.request().method()} ${new URL(r.url()).pathname} ${r.status()}`);
});
await p.goto(`${base}/#/models/${model}/versions/${version}`, { waitUntil: "load", timeout: 60000 });
await p.getByTitle(/^(Add|Edit) aliases$/).click({ timeout: 30000 });
const input = p.locator("[role=dialog] input");
await input.fill(alias);
await input.press("Enter");
await p.getByRole("button", { name: "Save aliases" }).click();
let closed = true;
try {
  await p.getByRole("dialog").waitFor({ state: "hidden", timeout: 10000 });
} catch {
  closed = false;
}
const text = closed ? "" : await p.getByRole("dialog").innerText();
await p.screenshot({ path: shot });
await browser.close();
console.log(JSON.stringify({ calls, closed, text }));

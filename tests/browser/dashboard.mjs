// Drives the dashboard in Debian's headless Chromium through Playwright core.
//
//   node dashboard.mjs URL DB OUT_DIR
//
// URL: a running `reglab serve` over the store written by
// tests/serve/serve_fixture.cpp (write_demo_store), whose file is DB;
// OUT_DIR receives screenshots. Prints one line per check and exits 1 on
// the first failure (0 when all pass). tests/serve/browser_test.cpp runs it.
import { chromium } from "playwright-core";
import { execFileSync } from "node:child_process";
import { join } from "node:path";

const [url, db, outDir] = process.argv.slice(2);
if (!url || !db || !outDir) {
  console.error("usage: node dashboard.mjs URL DB OUT_DIR");
  process.exit(2);
}
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";

function check(condition, what, detail = "") {
  if (!condition) throw new Error(`FAILED: ${what}${detail ? ` (${detail})` : ""}`);
  console.log(`ok: ${what}`);
}

// Non-transparent pixels drawn on the page's uPlot canvases.
async function drawnPixels(page, selector) {
  return page.$$eval(selector + " canvas", (canvases) => canvases.reduce((sum, c) => {
    const data = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    for (let i = 3; i < data.length; i += 4) if (data[i] !== 0) n++;
    return sum + n;
  }, 0));
}

const browser = await chromium.launch({ executablePath, args: ["--no-sandbox", "--disable-gpu"] });
let failed = false;
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const pageErrors = [];
  const dialogs = [];
  const outside = [];
  page.on("pageerror", (e) => { pageErrors.push(e.message); console.log("page error: " + e.message); });
  page.on("dialog", (d) => { dialogs.push(d.message()); d.dismiss(); });
  page.on("request", (r) => { if (!r.url().startsWith(url)) outside.push(r.url()); });

  // The sweeps.
  await page.goto(url + "/#/");
  await page.waitForSelector("#sweeps tbody tr");
  check((await page.textContent("#sweeps tbody")).includes("demo"), "the sweeps page lists the sweep");

  // The runs table lists every run, hostile strings as text.
  await page.goto(url + "/#/sweep/demo");
  await page.waitForSelector("#runs tbody tr");
  const rows = await page.$$eval("#runs tbody tr", (trs) => trs.length);
  check(rows === 8, "the runs table lists the 8 runs", `got ${rows}`);
  const labels = await page.$$eval("#runs td.label", (tds) => tds.map((td) => td.textContent));
  check(labels.includes("<script>window.__reglab_xss=1</script>"), "a label holding a script tag is shown as text");
  const cells = await page.textContent("#runs tbody");
  check(cells.includes('<img src=x onerror="window.__reglab_xss=2"> failed'), "an error holding an img tag is shown as text");
  check(cells.includes("<b onmouseover"), "a config value holding markup is shown as text");
  check(await page.$$eval("#runs img, #runs script, #runs b", (n) => n.length) === 0, "no element was made from store strings");
  check(await page.evaluate(() => window.__reglab_xss === undefined), "no store string ran as script");

  // Filtering by a parameter.
  await page.fill("#filter", "method.name=elr");
  await page.press("#filter", "Enter");
  await page.waitForFunction(() => document.querySelectorAll("#runs tbody tr").length === 4);
  const methods = await page.$$eval("#runs tbody tr", (trs) => trs.map((tr) => tr.children[3].textContent));
  check(methods.length === 4 && methods.every((m) => m === "elr"), "filtering method.name=elr leaves the 4 elr runs",
        methods.join(","));
  // And by status on top of it.
  await page.selectOption("#status", "completed");
  await page.waitForFunction(() => document.querySelectorAll("#runs tbody tr").length === 3);
  check(true, "adding status=completed leaves 3 runs");
  // Sorting by the metric, descending: the best elr seed first.
  await page.click('th[data-sort="metric"]');
  await page.waitForSelector('th[data-sort="metric"].sorted-asc');
  await page.click('th[data-sort="metric"]');
  await page.waitForSelector('th[data-sort="metric"].sorted-desc');
  await page.waitForFunction(() => document.querySelector("#runs tbody tr")?.dataset.run === "6");
  check(true, "sorting by test.acc descending puts run 6 first");

  // A run: its curve is drawn.
  await page.goto(url + "/#/run/1");
  await page.waitForSelector("#run-chart canvas");
  await page.waitForTimeout(200);
  check(await drawnPixels(page, "#run-chart") > 500, "the run page draws its learning curve");
  check((await page.textContent("#config")).includes('"optim"'), "the run page shows the configuration");
  check((await page.textContent("#log")).includes("epoch 19 done"), "the run page shows the log tail");

  // The comparison: table and curves with bands.
  await page.goto(url + "/#/compare/demo?by=method.name&metric=test.acc");
  await page.waitForSelector("#compare tbody tr");
  const groups = await page.$$eval("#compare tbody tr", (trs) => trs.map((tr) => tr.children[0].textContent));
  check(groups.length === 2 && groups[0] === "elr" && groups[1] === "ce", "the comparison ranks elr above ce",
        groups.join(","));
  check((await page.getAttribute("#compare tbody tr", "class")) === "best", "the best group is marked");
  await page.waitForSelector("#cmp-chart canvas");
  await page.waitForTimeout(200);
  const drawn = await drawnPixels(page, "#cmp-chart");
  check(drawn > 1000, "the comparison draws its curves", `${drawn} pixels`);
  // Hovering shows values in the legend.
  const box = await page.locator("#cmp-chart .u-over").boundingBox();
  await page.mouse.move(box.x + box.width * 0.5, box.y + box.height * 0.5);
  await page.waitForTimeout(100);
  const legend = await page.textContent("#cmp-chart .u-legend");
  check(/0\.\d{4}/.test(legend), "hovering the chart shows values in the legend");
  // Clicking a legend entry hides the group.
  await page.click("#cmp-chart .u-legend .u-series:nth-child(2)");
  await page.waitForTimeout(200);
  const after = await drawnPixels(page, "#cmp-chart");
  check(after < drawn, "clicking a legend entry hides that group", `${drawn} -> ${after} pixels`);
  await page.screenshot({ path: join(outDir, "dashboard-compare.png"), fullPage: true });

  // Live: the running run finishes while the page is open.
  await page.goto(url + "/#/sweep/demo?status=running");
  await page.waitForFunction(() => document.querySelectorAll("#runs tbody tr").length === 1);
  await page.waitForFunction(() => document.getElementById("live").textContent.includes("1 running"));
  execFileSync("sqlite3", [db, "UPDATE runs SET status = 'completed', finished_at = '2099-01-01T00:00:00Z' WHERE id = 8"]);
  await page.waitForFunction(() => document.querySelectorAll("#runs tbody tr").length === 0, null, { timeout: 10000 });
  check(true, "the runs table updates by itself when a run finishes");
  check((await page.textContent("#live")) === "", "the live badge goes out when nothing runs");
  await page.screenshot({ path: join(outDir, "dashboard-runs.png"), fullPage: true });

  check(pageErrors.length === 0, "no script errors on the pages", pageErrors.join(" | "));
  check(dialogs.length === 0, "no dialogs opened", dialogs.join(" | "));
  check(outside.length === 0, "nothing was requested from outside the server", outside.join(" "));
} catch (err) {
  failed = true;
  console.log(err.message);
  // What the page showed, for the log of a failed run.
  try {
    const page = browser.contexts()[0]?.pages()[0];
    if (page) {
      console.log("at " + page.url() + ": " + (await page.textContent("#main")).slice(0, 2000));
      await page.screenshot({ path: join(outDir, "dashboard-failure.png"), fullPage: true });
    }
  } catch (e) {
    console.log("(could not capture the page: " + e.message + ")");
  }
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);

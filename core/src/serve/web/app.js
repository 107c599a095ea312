// The reglab dashboard: a single page over the JSON API of `reglab serve`.
//
// Views, chosen by the URL fragment:
//   #/                       the sweeps
//   #/sweep/NAME?…           a sweep's runs (sort, filter by status, text and KEY=VALUE)
//   #/run/ID                 one run
//   #/compare/NAME?…         groups by chosen keys: mean ± CI table and curves
//
// Every string from the store reaches the page as a text node (el() below
// never parses HTML), so names, values and errors can hold anything.
"use strict";

const main = document.getElementById("main");
const crumbs = document.getElementById("crumbs");
const liveBadge = document.getElementById("live");
const POLL_MS = 2000;

// ---------------------------------------------------------------- helpers

// el("td", {class: "num"}, "text", childNode, …): attributes are set as
// properties or attributes, children strings become text nodes.
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (k === "value") node.value = v;
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

async function api(path, params) {
  const url = new URL(path, location.origin);
  for (const [k, v] of params || []) url.searchParams.append(k, v);
  const res = await fetch(url, { headers: { Accept: "application/json" } });
  const body = await res.json();
  if (!res.ok) throw new Error(body.error || res.statusText);
  return body;
}

function fmt(x, digits = 4) {
  if (x === null || x === undefined) return "—";
  if (typeof x !== "number") return String(x);
  if (Number.isInteger(x)) return String(x);
  const a = Math.abs(x);
  return a !== 0 && (a < 1e-3 || a >= 1e6) ? x.toExponential(3) : x.toFixed(digits);
}

function seconds(s) {
  if (s === null || s === undefined) return "—";
  if (s < 90) return s.toFixed(1) + " s";
  if (s < 5400) return (s / 60).toFixed(1) + " min";
  return (s / 3600).toFixed(2) + " h";
}

const sweepHref = (name, q) => "#/sweep/" + encodeURIComponent(name) + (q ? "?" + q : "");
const compareHref = (name, q) => "#/compare/" + encodeURIComponent(name) + (q ? "?" + q : "");
const runHref = (id) => "#/run/" + encodeURIComponent(id);

function statusCell(status) {
  return el("td", { class: "status-" + status }, status);
}

function setCrumbs(...parts) {
  crumbs.replaceChildren(...parts.map((p) => (typeof p === "string" ? el("span", {}, p) : p)));
}

function showError(err) {
  main.replaceChildren(el("p", { class: "error" }, "Error: " + err.message));
}

// The route and its query, from location.hash.
function route() {
  const hash = location.hash.replace(/^#/, "") || "/";
  const [path, query] = hash.split("?");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  return { view: parts[0] || "sweeps", arg: parts[1], query: new URLSearchParams(query || "") };
}

function navigate(view, name, query) {
  const q = query.toString();
  const target = (view === "compare" ? compareHref : sweepHref)(name, q);
  if (location.hash !== target) location.hash = target;
  else render();
}

// ---------------------------------------------------------------- charts

const charts = [];
function disposeCharts() {
  while (charts.length) charts.pop().destroy();
}

// One uPlot chart. `groups`: [{label, colour, steps, mean, lo?, hi?}], drawn
// as lines with an optional shaded band between lo and hi.
function lineChart(container, groups, { xLabel, yLabel }) {
  const xs = [...new Set(groups.flatMap((g) => g.steps))].sort((a, b) => a - b);
  const index = new Map(xs.map((x, i) => [x, i]));
  const data = [xs];
  const series = [{ label: xLabel }];
  const bands = [];
  const align = (steps, ys) => {
    const out = new Array(xs.length).fill(null);
    steps.forEach((s, i) => (out[index.get(s)] = ys[i]));
    return out;
  };
  for (const g of groups) {
    const colour = g.colour || "#1f77b4";
    data.push(align(g.steps, g.mean));
    series.push({ label: g.label, stroke: colour, width: 2, spanGaps: true, value: (u, v) => fmt(v) });
    if (g.lo && g.hi) {
      const mid = series.length - 1;
      data.push(align(g.steps, g.hi));
      series.push({ label: g.label + " (upper)", stroke: colour + "00", spanGaps: true,
                    points: { show: false }, value: (u, v) => fmt(v) });
      data.push(align(g.steps, g.lo));
      series.push({ label: g.label + " (lower)", stroke: colour + "00", spanGaps: true, points: { show: false },
                    value: (u, v) => fmt(v) });
      bands.push({ series: [series.length - 2, series.length - 1], fill: colour + "30" });
      g._indices = [mid, series.length - 2, series.length - 1];
    }
  }
  const width = Math.max(360, Math.min(container.clientWidth || 900, 1200));
  const opts = {
    width, height: 320, series, bands,
    axes: [{ label: xLabel }, { label: yLabel, size: 70 }],
    scales: { x: { time: false } },
    cursor: { drag: { x: true, y: false } },
    legend: { live: true },
    hooks: {
      // Hiding a group from the legend hides its band too.
      setSeries: [(u, i, o) => {
        for (const g of groups) {
          if (g._indices && g._indices[0] === i && o && "show" in o) {
            for (const j of g._indices.slice(1)) if (u.series[j].show !== o.show) u.setSeries(j, { show: o.show });
          }
        }
      }],
    },
  };
  // Band edges have no legend entry of their own.
  const chart = new uPlot(opts, data, container);
  chart.root.querySelectorAll(".u-legend .u-series").forEach((row, i) => {
    if (series[i] && series[i].label.endsWith(")") && / \((upper|lower)\)$/.test(series[i].label)) row.style.display = "none";
  });
  charts.push(chart);
  return chart;
}

// ---------------------------------------------------------------- views

async function viewSweeps() {
  setCrumbs();
  const { sweeps } = await api("/api/sweeps");
  const rows = sweeps.map((s) =>
    el("tr", {},
      el("td", {}, el("a", { href: sweepHref(s.name) }, s.name)),
      el("td", {}, s.description),
      el("td", { class: "num" }, s.runs),
      el("td", { class: "num status-completed" }, s.status.completed),
      el("td", { class: "num status-running" }, s.status.running),
      el("td", { class: "num status-pending" }, s.status.pending),
      el("td", { class: "num status-failed" }, s.status.failed + s.status.interrupted),
      el("td", {}, s.created_at),
      el("td", {}, el("a", { href: compareHref(s.name) }, "compare"))));
  main.replaceChildren(
    el("h1", {}, "Sweeps"),
    sweeps.length === 0 ? el("p", { class: "muted" }, "No sweeps in this database yet: run one with `reglab run`.") :
      el("table", { id: "sweeps" },
        el("thead", {}, el("tr", {}, ["sweep", "description", "runs", "completed", "running", "pending", "failed",
                                        "created", ""].map((h) => el("th", {}, h)))),
        el("tbody", {}, rows)));
  return null;
}

async function viewSweep(name, query) {
  setCrumbs(el("a", { href: sweepHref(name) }, name), el("a", { href: compareHref(name) }, "compare"));
  const sweep = await api("/api/sweep", [["name", name]]);
  const metric = query.get("metric") ?? (sweep.metrics.includes("test.acc") ? "test.acc" : sweep.metrics[0] || "");
  const sort = query.get("sort") || "id";
  const order = query.get("order") || "asc";
  const offset = Number(query.get("offset") || 0);
  const limit = 100;
  const params = [["sweep", name], ["sort", sort], ["order", order], ["limit", limit], ["offset", offset]];
  if (metric) params.push(["metric", metric]);
  for (const k of ["status", "q"]) if (query.get(k)) params.push([k, query.get(k)]);
  for (const w of query.getAll("where")) params.push(["where", w]);
  for (const k of sweep.keys) params.push(["columns", k]);
  const page = await api("/api/runs", params);

  const update = (changes) => {
    const q = new URLSearchParams(query);
    for (const [k, v] of Object.entries(changes)) {
      if (v === null || v === "") q.delete(k);
      else q.set(k, v);
    }
    if (!("offset" in changes)) q.delete("offset");
    navigate("sweep", name, q);
  };
  const header = (label, key) => {
    const cls = "sortable" + (sort === key ? " sorted-" + order : "");
    return el("th", { class: cls, "data-sort": key,
                      onclick: () => update({ sort: key, order: sort === key && order === "asc" ? "desc" : "asc" }) },
              label);
  };

  const filterInput = el("input", { id: "filter", placeholder: "KEY=VALUE, Enter", size: 24 });
  filterInput.addEventListener("keydown", (e) => {
    if (e.key !== "Enter" || !filterInput.value.includes("=")) return;
    const q = new URLSearchParams(query);
    q.append("where", filterInput.value.trim());
    q.delete("offset");
    navigate("sweep", name, q);
  });
  const chips = query.getAll("where").map((w) =>
    el("span", { class: "chip" }, w, el("button", { title: "remove filter", onclick: () => {
      const q = new URLSearchParams();
      for (const [k, v] of query) if (!(k === "where" && v === w)) q.append(k, v);
      navigate("sweep", name, q);
    } }, "×")));
  const textInput = el("input", { id: "search", placeholder: "label, key, method, error", value: query.get("q") || "" });
  textInput.addEventListener("change", () => update({ q: textInput.value }));

  const controls = el("div", { class: "controls" },
    el("label", {}, "metric ",
      el("select", { id: "metric", onchange: (e) => update({ metric: e.target.value }) },
        sweep.metrics.map((m) => el("option", { value: m, selected: m === metric }, m)))),
    el("label", {}, "status ",
      el("select", { id: "status", onchange: (e) => update({ status: e.target.value }) },
        ["", "pending", "running", "completed", "failed", "interrupted"].map((s) =>
          el("option", { value: s, selected: s === (query.get("status") || "") }, s || "any")))),
    el("label", {}, "search ", textInput),
    el("label", {}, "filter ", filterInput), chips);

  const rows = page.runs.map((r) =>
    el("tr", { "data-run": r.id },
      el("td", { class: "num" }, el("a", { href: runHref(r.id) }, r.id)),
      el("td", { class: "label" }, r.label),
      statusCell(r.status),
      el("td", {}, r.method),
      sweep.keys.map((k) => el("td", {}, r.params[k] ?? "")),
      el("td", { class: "num" }, fmt(r.metric)),
      el("td", { class: "num" }, seconds(r.duration_s)),
      el("td", { class: "error" }, r.error ? r.error.split("\n")[0].slice(0, 160) : "")));
  const pager = el("div", { class: "pager" },
    el("span", { class: "muted", id: "count" },
       page.total === 0 ? "no runs match" : `runs ${offset + 1}–${offset + page.runs.length} of ${page.total}`),
    offset > 0 && el("button", { onclick: () => update({ offset: Math.max(0, offset - limit) }) }, "previous"),
    offset + limit < page.total && el("button", { onclick: () => update({ offset: offset + limit }) }, "next"));

  main.replaceChildren(
    el("h1", {}, name),
    sweep.description && el("p", {}, sweep.description),
    el("p", { class: "muted" }, `${sweep.runs} runs: ${sweep.status.completed} completed, ${sweep.status.running} running, ` +
       `${sweep.status.pending} pending, ${sweep.status.failed} failed, ${sweep.status.interrupted} interrupted`),
    controls, pager,
    el("table", { id: "runs" },
      el("thead", {}, el("tr", {}, header("id", "id"), header("label", "label"), header("status", "status"),
        header("method", "method"), sweep.keys.map((k) => header(k, "param:" + k)), header(metric || "metric", "metric"),
        header("time", "duration"), el("th", {}, "error"))),
      el("tbody", {}, rows)),
    el("h2", {}, "Sweep file"), el("pre", { id: "toml" }, sweep.toml));
  return name;
}

async function viewRun(id) {
  const run = await api("/api/run", [["id", id]]);
  setCrumbs(el("a", { href: sweepHref(run.sweep) }, run.sweep), el("span", {}, "run " + run.id));
  const metric = new URLSearchParams(location.hash.split("?")[1] || "").get("metric") ||
                 (run.metrics.includes("test.acc") ? "test.acc" : run.metrics[0]);
  const field = (k, v) => [el("dt", {}, k), el("dd", {}, v ?? "—")];
  const chartBox = el("div", { class: "chart", id: "run-chart" });
  const metricSelect = el("select", { id: "run-metric" }, run.metrics.map((m) => el("option", { value: m, selected: m === metric }, m)));
  metricSelect.addEventListener("change", () => { location.hash = runHref(run.id) + "?metric=" + encodeURIComponent(metricSelect.value); });
  main.replaceChildren(
    el("h1", {}, `run ${run.id}: `, el("span", { class: "label" }, run.label)),
    el("dl", { class: "fields" },
      field("status", el("span", { class: "status-" + run.status }, run.status)), field("sweep", run.sweep),
      field("key", run.key), field("method", run.method + (run.method_version ? " " + run.method_version : "")),
      field("host", run.host), field("git", run.git_rev), field("attempts", run.attempts),
      field("started", run.started_at), field("finished", run.finished_at), field("time", seconds(run.duration_s)),
      field("log", run.log_path)),
    run.error && el("div", {}, el("h2", {}, "Error"), el("pre", { class: "error", id: "run-error" }, run.error)),
    el("h2", {}, "Curve"),
    run.metrics.length ? el("div", { class: "controls" }, el("label", {}, "metric ", metricSelect)) : el("p", { class: "muted" }, "No metrics logged yet."),
    chartBox,
    el("h2", {}, "Summaries"),
    el("table", { id: "summaries" },
      el("thead", {}, el("tr", {}, ["metric", "kind", "value", "step"].map((h) => el("th", {}, h)))),
      el("tbody", {}, run.summaries.map((s) => el("tr", {}, el("td", {}, s.key), el("td", {}, s.kind),
        el("td", { class: "num" }, fmt(s.value)), el("td", { class: "num" }, s.step))))),
    el("h2", {}, "Configuration"), el("pre", { id: "config" }, JSON.stringify(run.config, null, 2)),
    el("h2", {}, "Artifacts"),
    el("table", { id: "artifacts" },
      el("thead", {}, el("tr", {}, ["kind", "path", "checksum", "created"].map((h) => el("th", {}, h)))),
      el("tbody", {}, run.artifacts.map((a) => el("tr", {}, el("td", {}, a.kind), el("td", {}, a.path),
        el("td", {}, a.checksum), el("td", {}, a.created_at))))),
    el("h2", {}, "Log (tail)"), el("pre", { id: "log" }, run.log_tail || "(empty)"));
  if (metric) {
    const { series } = await api("/api/series", [["ids", run.id], ["key", metric]]);
    lineChart(chartBox, series.map((s) => ({ label: metric, colour: "#1f77b4", steps: s.steps, mean: s.values })),
              { xLabel: "step", yLabel: metric });
  }
  return run.sweep;
}

// The ranking the API used ({direction: higher|lower|none, direction_source}),
// in the words `reglab compare` prints. Nothing is guessed from the name.
function directionText(table) {
  if (table.direction === "higher" || table.direction === "lower") {
    return `${table.direction} is better${table.direction_source === "override" ? " (as asked)" : ""}, the best group in bold`;
  }
  return table.direction_source === "disagree"
    ? "no declared direction: the runs declare different directions, so no group is best"
    : "no declared direction, so no group is best";
}

async function viewCompare(name, query) {
  setCrumbs(el("a", { href: sweepHref(name) }, name), el("span", {}, "compare"));
  const sweep = await api("/api/sweep", [["name", name]]);
  if (sweep.metrics.length === 0) {
    main.replaceChildren(el("h1", {}, name), el("p", { class: "muted" }, "No completed run has logged a metric yet."));
    return name;
  }
  const metric = query.get("metric") || (sweep.metrics.includes("test.acc") ? "test.acc" : sweep.metrics[0]);
  const by = query.getAll("by").length ? query.getAll("by") : sweep.default_by;
  const band = query.get("band") || "ci";
  const summary = query.get("summary") || "final";
  // "declared" ranks by the direction the runs declared; higher/lower override it.
  const direction = query.get("direction") || "declared";
  const where = query.getAll("where").map((w) => ["where", w]);
  const byParams = by.map((k) => ["by", k]);
  const [table, curves] = await Promise.all([
    api("/api/compare", [["sweep", name], ["metric", metric], ["summary", summary], ["direction", direction],
                         ...byParams, ...where]),
    api("/api/curves", [["sweep", name], ["metric", metric], ["band", band], ...byParams, ...where]),
  ]);
  const update = (changes) => {
    const q = new URLSearchParams(query);
    for (const [k, v] of Object.entries(changes)) {
      q.delete(k);
      for (const x of [].concat(v)) if (x !== "") q.append(k, x);
    }
    navigate("compare", name, q);
  };
  const keys = [...new Set(["method.name", ...sweep.keys])];
  const byBoxes = keys.map((k) => el("label", {},
    el("input", { type: "checkbox", "data-key": k, checked: by.includes(k),
                  onchange: (e) => update({ by: e.target.checked ? [...by, k] : by.filter((x) => x !== k) }) }), " " + k));
  main.replaceChildren(
    el("h1", {}, name + ": comparison"),
    el("div", { class: "controls" },
      el("label", {}, "metric ", el("select", { id: "cmp-metric", onchange: (e) => update({ metric: e.target.value }) },
        sweep.metrics.map((m) => el("option", { value: m, selected: m === metric }, m)))),
      el("label", {}, "summary ", el("select", { onchange: (e) => update({ summary: e.target.value }) },
        ["final", "best"].map((s) => el("option", { value: s, selected: s === summary }, s)))),
      el("label", {}, "ranking ", el("select", { onchange: (e) => update({ direction: e.target.value === "declared" ? "" : e.target.value }) },
        [["declared", "as declared"], ["higher", "higher is better"], ["lower", "lower is better"]].map(([v, t]) =>
          el("option", { value: v, selected: v === direction }, t)))),
      el("label", {}, "band ", el("select", { onchange: (e) => update({ band: e.target.value }) },
        [["ci", "95% CI of the mean"], ["std", "± std"]].map(([v, t]) => el("option", { value: v, selected: v === band }, t)))),
      el("span", {}, "group by: ", byBoxes)),
    el("table", { id: "compare" },
      el("thead", {}, el("tr", {}, by.map((k) => el("th", {}, k)),
        ["n", "mean", "± std", "95% CI", "min", "max"].map((h) => el("th", {}, h)))),
      el("tbody", {}, table.groups.map((g) => el("tr", { class: g.best ? "best" : "" },
        by.map((k) => el("td", {}, g.values[k])), el("td", { class: "num" }, g.n), el("td", { class: "num" }, fmt(g.mean)),
        el("td", { class: "num" }, fmt(g.std)), el("td", { class: "num" }, g.ci95 === null ? "—" : "± " + fmt(g.ci95)),
        el("td", { class: "num" }, fmt(g.min)), el("td", { class: "num" }, fmt(g.max)))))),
    el("p", { class: "muted" }, `${summary} ${metric} over seeds; ${directionText(table)}.`),
    el("h2", {}, "Curves"),
    el("p", { class: "muted" }, "Drag to zoom, double-click to reset, click a legend entry to hide a group."),
    el("div", { class: "chart", id: "cmp-chart" }));
  lineChart(document.getElementById("cmp-chart"), curves.groups, { xLabel: "step", yLabel: metric });
  return name;
}

// ---------------------------------------------------------------- main loop

let liveSweep = null;   // the sweep the current view shows, polled for changes
let liveToken = null;
let rendering = false;
let renderAgain = false;  // the route changed while a render was under way

async function render() {
  if (rendering) {
    renderAgain = true;
    return;
  }
  rendering = true;
  renderAgain = false;
  disposeCharts();
  const { view, arg, query } = route();
  try {
    if (view === "sweep") liveSweep = await viewSweep(arg, query);
    else if (view === "run") liveSweep = await viewRun(arg);
    else if (view === "compare") liveSweep = await viewCompare(arg, query);
    else liveSweep = await viewSweeps();
    liveToken = null;
    await poll(false);
  } catch (err) {
    showError(err);
  } finally {
    rendering = false;
  }
  if (renderAgain) await render();
}

// Redraws the view when its sweep changes (a run starts, reports or ends).
async function poll(redraw = true) {
  if (!liveSweep) {
    liveBadge.className = "";
    liveBadge.textContent = "";
    return;
  }
  try {
    const state = await api("/api/state", [["sweep", liveSweep]]);
    liveBadge.className = state.live ? "on" : "";
    liveBadge.textContent = state.live ? `live: ${state.status.running} running, ${state.status.pending} pending` : "";
    const changed = liveToken !== null && state.token !== liveToken;
    liveToken = state.token;
    if (changed && redraw && !rendering) {
      const y = window.scrollY;
      await render();
      window.scrollTo(0, y);
    }
  } catch (err) {
    liveBadge.textContent = "";
  }
}

window.addEventListener("hashchange", render);
setInterval(() => poll(true), POLL_MS);
render();

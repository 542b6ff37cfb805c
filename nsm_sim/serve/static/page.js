// The planning page: renders what the server computed, sends edits, shows refusals.
// It computes nothing: every number comes from /api/state and /api/edit.
"use strict";

const state = { scenario: 0, table: null };
const FIELDS = ["lift_low", "lift_high", "confidence", "reach", "start", "ramp", "effort"];

function el(tag, attrs = {}, text) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

function fmt(value) {
  if (value === null || value === undefined) return "-";
  if (typeof value === "boolean") return value ? "yes" : "no";
  if (typeof value !== "number") return String(value);
  const a = Math.abs(value);
  if (a !== 0 && (a < 0.001 || a >= 100)) return value.toLocaleString("en-US", { maximumFractionDigits: 0 });
  return Number(value.toPrecision(3)).toString();
}

function shortfall(gap) { return gap && typeof gap === "object" ? gap.shortfall : gap; }

function pct(p) { return p === null || p === undefined ? "-" : `${(100 * p).toFixed(0)}%`; }

async function call(method, url, body) {
  const options = { method, headers: { "Content-Type": "application/json" } };
  if (body !== undefined) options.body = JSON.stringify(body);
  const response = await fetch(url, options);
  const payload = await response.json();
  if (!response.ok) throw payload;
  return payload;
}

function showProblems(error) {
  const box = document.getElementById("problems");
  if (!error) { box.hidden = true; box.textContent = ""; return; }
  const lines = error.problems && error.problems.length ? error.problems :
    [error.error || error.message || String(error)];
  box.textContent = "Refused, nothing changed:\n" + lines.map((l) => "- " + l).join("\n");
  box.hidden = false;
}

function renderFrame(table, rows, caption) {
  table.querySelector("caption") && (table.querySelector("caption").textContent = caption || "");
  const head = table.querySelector("thead");
  const body = table.querySelector("tbody");
  head.replaceChildren();
  body.replaceChildren();
  if (!rows || !rows.length) return;
  const columns = Object.keys(rows[0]);
  const tr = el("tr");
  for (const c of columns) tr.appendChild(el("th", {}, c));
  head.appendChild(tr);
  for (const row of rows) {
    const r = el("tr");
    if (row.initiative !== undefined) r.setAttribute("data-initiative", row.initiative);
    for (const c of columns) {
      const v = row[c];
      r.appendChild(el("td", typeof v === "number" ? { class: "num" } : {}, fmt(v)));
    }
    body.appendChild(r);
  }
}

function renderTable(table) {
  state.table = table;
  document.getElementById("scenario-name").textContent = table.name;
  const where = document.getElementById("scenario-path");
  where.textContent = table.path.split(/[\\/]/).pop();
  where.title = table.path;
  const capacity = document.getElementById("capacity");
  capacity.value = table.capacity;
  capacity.classList.remove("invalid");
  document.getElementById("horizon").textContent = `horizon ${table.horizon} periods`;
  const body = document.querySelector("#initiatives tbody");
  body.replaceChildren();
  for (const row of table.initiatives) {
    const tr = el("tr", { "data-initiative": row.name });
    if (!row.on) tr.classList.add("off");
    const on = el("input", { type: "checkbox", "data-field": "on", "aria-label": `${row.name} on` });
    on.checked = row.on;
    on.addEventListener("change", () => edit({ initiative: row.name, field: "on", value: on.checked }, on));
    const cell = el("td");
    cell.appendChild(on);
    tr.appendChild(cell);
    tr.appendChild(el("td", {}, row.name));
    tr.appendChild(el("td", {}, row.target));
    for (const field of FIELDS) {
      const td = el("td");
      const value = row[field];
      if ((field === "lift_low" || field === "lift_high") && value === null) {
        td.textContent = field === "lift_low" ? row.lift : "";
        td.className = "lift-words";
      } else {
        const input = el("input", { "data-field": field, "aria-label": `${row.name} ${field}` });
        input.value = value === null || value === undefined ? "" : value;
        if (field === "reach" && value === null) input.placeholder = row.segments ? row.segments.join(", ") : "all";
        input.addEventListener("change", () => edit({ initiative: row.name, field, value: input.value }, input));
        input.addEventListener("keydown", (e) => { if (e.key === "Enter") input.blur(); });
        td.appendChild(input);
      }
      tr.appendChild(td);
    }
    body.appendChild(tr);
  }
}

// The charts are embedded once; each edit only replaces their data, found by name.
const charts = { models: {} };

async function embedCharts(items) {
  for (const [id, key] of [["fan-chart", "fan"], ["evpi-chart", "evpi"], ["forecast-chart", "forecast"]]) {
    const target = document.getElementById(id);
    target.replaceChildren();
    if (!window.Bokeh) continue;
    await Bokeh.embed.embed_item(items[key], id);
    const doc = Bokeh.documents[Bokeh.documents.length - 1];
    for (const model of doc.all_models) if (model.name) charts.models[model.name] = model;
  }
}

function updateCharts(data) {
  for (const [name, value] of Object.entries(data)) {
    const model = charts.models[name];
    if (!model) continue;
    if (name === "evpi:names") model.factors = value;
    else if (name === "forecast:target") {
      model.visible = value !== null && value !== undefined;
      if (model.visible) model.location = value;
    } else model.data = value;
  }
}

function renderForecast(results) {
  const section = document.getElementById("forecast-section");
  const box = document.getElementById("p-target");
  if (!results.forecast && !results.target) { section.hidden = true; return; }
  section.hidden = false;
  const target = results.target;
  box.hidden = !target;
  if (target) {
    box.textContent = `Target ${fmt(target.value)} by ${target.by}: P(reaching it) ` +
      `${pct(target.p_baseline)} with no initiative, ${pct(target.p_portfolio)} with the chosen ` +
      `portfolio; expected shortfall ${fmt(shortfall(target.gap_baseline))} and ` +
      `${fmt(shortfall(target.gap_portfolio))}.`;
  }
  const rows = target && target.initiatives ? target.initiatives.map((r) => ({ initiative: r.name, "P(target)": r.p })) : [];
  renderFrame(document.getElementById("target-initiatives"), rows, rows.length ? "P(reaching the target) with each initiative alone" : "");
}

function renderResults(results) {
  const folio = results.portfolio;
  const joint = folio.joint || {};
  document.getElementById("portfolio").textContent =
    `Fund ${folio.selected.length ? folio.selected.join(", ") : "nothing"} ` +
    `(effort ${fmt(folio.effort)} of ${fmt(folio.capacity)}): expected ${results.quantity} ` +
    `${fmt(joint.mean !== undefined ? joint.mean : folio.expected_value)}` +
    (joint.p5 !== undefined ? `, 90% interval ${fmt(joint.p5)} to ${fmt(joint.p95)}` : "") +
    `. Test ${results.evpi.length ? results.evpi[0].name : "-"} first: its uncertainty is worth ` +
    `the most to the decision. (${results.simulations.toLocaleString("en-US")} simulations)` +
    (results.note ? ` ${results.note}` : "");
  renderFrame(document.getElementById("ranking"), results.ranking, `Ranking by ${results.quantity} per effort`);
  renderFrame(document.getElementById("alone"), results.initiatives, "Each initiative alone");
  updateCharts(results.charts);
  renderForecast(results);
}

async function edit(change, input) {
  document.body.classList.add("busy");
  document.getElementById("status").textContent = "";
  try {
    const payload = await call("POST", "/api/edit", { scenario: state.scenario, ...change });
    showProblems(null);
    renderTable(payload.table);
    renderResults(payload.results);
    document.getElementById("status").textContent = "Not saved yet.";
  } catch (error) {
    showProblems(error);
    renderTable(state.table);
    const again = input && input.dataset.field === "capacity" ? document.getElementById("capacity") :
      input && document.querySelector(
        `#initiatives tr[data-initiative="${CSS.escape(change.initiative)}"] [data-field="${change.field}"]`);
    if (again && change.field !== "on") { again.value = change.value; again.classList.add("invalid"); }
  } finally {
    document.body.classList.remove("busy");
  }
}

async function load(index) {
  state.scenario = index;
  const payload = await call("GET", `/api/state?scenario=${index}`);
  const select = document.getElementById("scenario-select");
  select.replaceChildren();
  for (const s of payload.scenarios) {
    const option = el("option", { value: s.index }, s.name);
    if (s.index === index) option.selected = true;
    select.appendChild(option);
  }
  document.getElementById("compare-section").hidden = payload.scenarios.length < 2;
  const warnings = document.getElementById("warnings");
  warnings.replaceChildren(...payload.warnings.map((w) => el("div", { class: "warning" }, w)));
  document.getElementById("tree").innerHTML = payload.tree;  // generated and escaped by the server
  showProblems(null);
  renderTable(payload.table);
  await embedCharts(payload.charts);
  renderResults(payload.results);
  document.body.dataset.ready = "yes";
}

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("scenario-select").addEventListener("change", (e) => load(Number(e.target.value)));
  const capacity = document.getElementById("capacity");
  capacity.addEventListener("change", () => edit({ field: "capacity", value: capacity.value }, capacity));
  capacity.addEventListener("keydown", (e) => { if (e.key === "Enter") capacity.blur(); });
  document.getElementById("save").addEventListener("click", async () => {
    try {
      const payload = await call("POST", "/api/save", { scenario: state.scenario });
      document.getElementById("status").textContent = `Saved to ${payload.saved}.`;
    } catch (error) { showProblems(error); }
  });
  document.getElementById("compare").addEventListener("click", async () => {
    const payload = await call("GET", "/api/compare");
    const c = payload.comparison;
    renderFrame(document.getElementById("comparison"), c.table,
      `${c.a} (funds ${c.selected.a.join(", ")}) against ${c.b} (funds ${c.selected.b.join(", ")})`);
  });
  load(0).catch((error) => showProblems(error));
});

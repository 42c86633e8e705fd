// rnnkit explore: the page's script. It only draws: every number comes from the server's API
// (rnnkit/explorer/app.py), which computes through the library.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { runs: [], run: null, text: "", reading: null, parts: null, units: [], stream: null };

// ---- helpers -----------------------------------------------------------------------------

async function api(path, body) {
  const options = body === undefined ? {} : {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  };
  const response = await fetch(path, options);
  const answer = await response.json().catch(() => ({ error: `HTTP ${response.status}` }));
  if (!response.ok) throw new Error(answer.error || `HTTP ${response.status}`);
  return answer;
}

function status(message, isError = false) {
  $("status").textContent = message;
  $("status").className = isError ? "error" : "";
}

async function guarded(action) {
  try { await action(); } catch (error) { status(error.message, true); }
}

function colour(value) { // -1 blue, 0 white, +1 red
  if (value === null || value === undefined) return "#fff";
  const v = Math.max(-1, Math.min(1, value));
  const fade = Math.round(255 * (1 - Math.abs(v)));
  return v >= 0 ? `rgb(255,${fade},${fade})` : `rgb(${fade},${fade},255)`;
}

function lossColour(nats, scale = 5) { // 0 white .. scale nats deep orange
  if (nats === null || nats === undefined) return "#fff";
  const v = Math.min(1, nats / scale);
  return `rgb(255,${Math.round(255 - 143 * v)},${Math.round(255 - 188 * v)})`;
}

function shown(symbol) {
  return { "\n": "↵ (newline)", " ": "␣ (space)", "\t": "⇥ (tab)" }[symbol] ?? symbol;
}

function escapeHtml(text) {
  return text.replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" }[c]));
}

function fillHeat(element, text, values, paint = colour) {
  const fragment = document.createDocumentFragment();
  [...text].forEach((symbol, i) => {
    const span = document.createElement("span");
    span.textContent = symbol;
    span.dataset.i = i;
    span.style.background = paint(values ? values[i] : null);
    fragment.appendChild(span);
  });
  element.replaceChildren(fragment);
}

function currentRun() { return state.runs.find((r) => r.name === $("run").value); }
function unitChoice() {
  return { layer: +$("layer").value, part: $("part").value, index: +$("index").value };
}

// ---- runs and tabs -----------------------------------------------------------------------

async function start() {
  const answer = await api("/api/runs");
  state.runs = answer.runs;
  state.limits = answer.limits;
  const language = state.runs.filter((r) => r.type === "language model");
  const tasks = state.runs.filter((r) => r.type === "task");
  for (const run of language) $("run").add(new Option(`${run.name} (${run.cell} ${run.layers}×${run.hidden})`, run.name));
  for (const run of tasks) $("task-run").add(new Option(`${run.name} (${run.task})`, run.name));
  for (const select of [$("compare-a"), $("compare-b")]) {
    for (const run of language) select.add(new Option(run.name, run.name));
  }
  if (language.length > 1) $("compare-b").selectedIndex = 1;
  document.querySelector('[data-tab="task"]').hidden = tasks.length === 0;
  for (const tab of ["read", "sample", "compare"]) {
    document.querySelector(`[data-tab="${tab}"]`).hidden = language.length === 0;
  }
  $("text").value = answer.text;
  if (language.length) {
    chooseRun();
    if (answer.text) await readText();
  } else {
    showTab("task");
  }
  if (tasks.length) chooseTaskRun();
}

function showTab(name) {
  document.querySelectorAll(".tab").forEach((t) => t.classList.toggle("active", t.dataset.tab === name));
  document.querySelectorAll(".panel").forEach((p) => p.classList.toggle("active", p.id === name));
}

function chooseRun() {
  const run = currentRun();
  $("run-info").textContent = `${run.cell}, ${run.layers} layer(s) of ${run.hidden}, checkpoint ${run.checkpoint}`;
  $("layer").replaceChildren(...Array.from({ length: run.layers }, (_, i) => new Option(i, i)));
  $("part").replaceChildren(...run.parts.map((p) => new Option(p === "c" ? "tanh(c)" : p, p)));
  $("part").value = run.value;
  $("index").max = run.hidden - 1;
}

function chooseTaskRun() {
  const run = state.runs.find((r) => r.name === $("task-run").value);
  $("task-input").value = run.example;
}

// ---- reading -----------------------------------------------------------------------------

async function readText() {
  const text = $("text").value;
  if (!text) throw new Error("type or paste some text first");
  status("reading…");
  const run = currentRun().name;
  const started = performance.now();
  state.reading = await api("/api/read", { run, text });
  state.text = text;
  state.readingRun = run;
  $("mean-loss").textContent = state.reading.mean_loss === null ? "" :
    `${state.reading.mean_loss.toFixed(3)} nats/char (${(state.reading.mean_loss / Math.LN2).toFixed(3)} bits)`;
  showMeaning();
  const best = Object.values(state.reading.meaning)[0];
  if (best && best.length && !state.unitPicked) {
    $("layer").value = best[0].layer;
    $("index").value = best[0].index;
    $("part").value = state.reading.value;
  }
  await showUnit();
  status(`read ${text.length.toLocaleString()} characters in ${((performance.now() - started) / 1000).toFixed(2)} s`);
}

function showMeaning() {
  const blocks = Object.entries(state.reading.meaning).map(([feature, scores]) => {
    const measure = ["quotes", "comment"].includes(feature) ? "AUC" : "|r|";
    const buttons = scores.map((s) =>
      `<button class="unit-button" data-layer="${s.layer}" data-index="${s.index}" title="${measure} ${s.score.toFixed(3)}, ${s.sign > 0 ? "high" : "low"} where it holds">` +
      `${s.layer}:${s.index} ${s.sign > 0 ? "+" : "−"}${s.score.toFixed(2)}</button>`).join("");
    return `<div class="feature"><b>${feature}</b> <span class="muted">(${measure})</span><br>${buttons}</div>`;
  });
  $("meaning").innerHTML = blocks.join("") || "Nothing in this text varies (no quotes, comments, brackets or lines).";
}

async function showUnit() {
  if (!state.reading) return;
  const { layer, index } = unitChoice();
  const answer = await api("/api/unit", { run: state.readingRun, text: state.text, layer, index });
  state.parts = answer.parts;
  fillHeat($("heat"), state.text, state.parts[$("part").value]);
  markSelection();
}

function pickUnit(layer, index, part) {
  state.unitPicked = true;
  $("layer").value = layer;
  $("index").value = index;
  if (part) $("part").value = part;
  return guarded(showUnit);
}

// ---- the hover ---------------------------------------------------------------------------

function tooltipFor(i) {
  const run = state.runs.find((r) => r.name === state.readingRun);
  const symbols = [...state.text];
  const { layer, index, part } = unitChoice();
  const rows = Object.entries(state.parts).map(([name, values]) =>
    `<tr><td>${name === "c" ? "tanh(c)" : name}</td><td>${values[i] === null ? "–" : values[i].toFixed(3)}</td></tr>`).join("");
  const reading = state.reading;
  const guesses = reading.top_ids[i].map((id, k) =>
    `<tr><td>${escapeHtml(shown(run.symbols[id]))}</td><td>${(100 * reading.top_p[i][k]).toFixed(1)}%</td></tr>`).join("");
  const next = i + 1 < symbols.length
    ? `actual next ${escapeHtml(shown(symbols[i + 1]))}: rank ${reading.next_rank[i]}`
    : "the end of the text";
  const loss = reading.loss[i] === null ? "" : `this character cost ${reading.loss[i].toFixed(2)} nats<br>`;
  return `<b>${escapeHtml(shown(symbols[i]))}</b> at ${i}<br>unit ${layer}:${index} ${part === "c" ? "tanh(c)" : part} = <b>${state.parts[part][i].toFixed(3)}</b>` +
    `<table>${rows}</table>${loss}next character:<table>${guesses}</table>${next}`;
}

function hover(event, html) {
  const tip = $("tooltip");
  tip.innerHTML = html;
  tip.hidden = false;
  const x = Math.min(event.clientX + 14, window.innerWidth - tip.offsetWidth - 8);
  const y = Math.min(event.clientY + 14, window.innerHeight - tip.offsetHeight - 8);
  tip.style.left = `${x}px`;
  tip.style.top = `${y}px`;
}

// ---- select and match --------------------------------------------------------------------

function selectionFromMouse() {
  const selection = window.getSelection();
  if (!selection || selection.isCollapsed) return;
  const indexOf = (node) => {
    const element = node.nodeType === Node.TEXT_NODE ? node.parentElement : node;
    return element && element.dataset && element.dataset.i !== undefined ? +element.dataset.i : null;
  };
  const a = indexOf(selection.anchorNode), b = indexOf(selection.focusNode);
  if (a === null || b === null) return;
  $("sel-start").value = Math.min(a, b);
  $("sel-end").value = Math.max(a, b) + 1;
  markSelection();
}

function markSelection() {
  const start = +$("sel-start").value, end = +$("sel-end").value;
  const valid = $("sel-start").value !== "" && end > start;
  document.querySelectorAll("#heat span").forEach((s) => s.classList.toggle("sel", valid && +s.dataset.i >= start && +s.dataset.i < end));
  $("selection").textContent = valid ? [...state.text].slice(start, end).join("") : "";
}

async function findUnits() {
  if (!state.reading) throw new Error("read a text first");
  const start = +$("sel-start").value, end = +$("sel-end").value;
  const threshold = +$("threshold").value;
  const coverage = +$("coverage").value / 100;
  const before = $("off-before").checked ? 1 : 0, after = $("off-after").checked ? 1 : 0;
  const answer = await api("/api/select", { run: state.readingRun, text: state.text, start, end, threshold, coverage, before, after });
  state.units = answer.units;
  const part = answer.value;
  $("units").innerHTML = answer.units.length
    ? `<p>${answer.units.length} unit(s) on over the selection and off around it (ticked: used to match):</p>` + answer.units.map((u, k) =>
      `<span class="unit-choice"><input type="checkbox" class="use-unit" data-k="${k}" ${k < 10 ? "checked" : ""}>` +
      `<button class="unit-button" data-layer="${u.layer}" data-index="${u.index}" data-part="${part}" title="inside ≥ ${u.inside.toFixed(2)}, around ≤ ${u.around === null || u.around < -1e9 ? "–" : u.around.toFixed(2)}">${u.layer}:${u.index} ${u.sign > 0 ? "high" : "low"}</button></span>`).join("")
    : `<p>No unit is on over ${coverage < 1 ? `${Math.round(coverage * 100)}% of` : "the whole"} selection and off around it at threshold ${threshold}: lower the threshold, the share, or select a shorter stretch.</p>`;
  $("match-text").disabled = $("match-validation").disabled = answer.units.length === 0;
  $("matches").replaceChildren();
}

async function findMatches(where) {
  const ticked = [...document.querySelectorAll(".use-unit")].filter((box) => box.checked).map((box) => state.units[+box.dataset.k]);
  if (!ticked.length) throw new Error("tick at least one unit to match");
  const units = ticked.map((u) => ({ layer: u.layer, index: u.index, sign: u.sign }));
  const answer = await api("/api/match", { run: state.readingRun, text: state.text, units, threshold: +$("threshold").value, where });
  document.querySelectorAll("#heat span.hit").forEach((s) => s.classList.remove("hit"));
  const shownCount = answer.total > answer.matches.length ? `${answer.total} (the ${answer.matches.length} longest shown)` : `${answer.total}`;
  const place = where === "text" ? "text" : `first ${state.limits.validation.toLocaleString()} characters of the validation text`;
  $("matches").innerHTML = `<p>${shownCount} stretch(es) in the ${place} where ${units.length === 1 ? "the unit is" : `all ${units.length} units are`} on:</p>` +
    answer.matches.map((m) => `<div class="match" data-start="${m.start}" data-end="${m.end}" data-where="${where}">` +
      `${escapeHtml(m.before)}<b>${escapeHtml(m.span)}</b>${escapeHtml(m.after)}</div>`).join("");
  if (where === "text") {
    for (const m of answer.matches) {
      for (let i = m.start; i < m.end; i++) document.querySelector(`#heat span[data-i="${i}"]`)?.classList.add("hit");
    }
  }
}

// ---- sampling ----------------------------------------------------------------------------

function startSample() {
  const run = currentRun();
  const { layer, index, part } = unitChoice();
  const parameters = new URLSearchParams({
    run: run.name, prime: $("prime").value, length: $("length").value, temperature: $("temperature").value,
    top_k: $("top-k").value, top_p: $("top-p").value, seed: $("seed").value, layer, index,
    part: part === "c" ? "c" : "h", weights: $("weights").value,
  });
  const heat = $("sample-heat");
  heat.replaceChildren();
  state.sampleText = $("prime").value;
  fillHeat(heat, state.sampleText, null);
  let count = 0;
  let shown = [...state.sampleText].length; // characters on the page: counted, never re-split
  const started = performance.now();
  const source = new EventSource(`/api/sample?${parameters}`);
  state.stream = source;
  $("sample-start").disabled = true;
  $("sample-stop").disabled = false;
  status("sampling…");
  source.onmessage = (event) => {
    const chunk = JSON.parse(event.data);
    [...chunk.text].forEach((symbol, k) => {
      const span = document.createElement("span");
      span.textContent = symbol;
      span.dataset.i = shown++;
      span.style.background = colour(chunk.values[k]);
      heat.appendChild(span);
      state.sampleText += symbol;
    });
    count += [...chunk.text].length;
    heat.scrollTop = heat.scrollHeight;
  };
  const finish = (message) => {
    source.close();
    state.stream = null;
    $("sample-start").disabled = false;
    $("sample-stop").disabled = true;
    const seconds = (performance.now() - started) / 1000;
    const summary = `${message}: ${count} characters in ${seconds.toFixed(1)} s (${Math.round(count / seconds)}/s)`;
    status(`${summary} · reading it…`);
    $("text").value = state.sampleText;
    guarded(async () => {
      await readText();
      fillHeat(heat, state.text, state.parts[$("part").value]);
      heat.dataset.done = "1";
      status(`${summary} · read in full: hover a character`);
    });
  };
  source.addEventListener("done", () => finish("sampled"));
  source.onerror = () => { if (state.stream === source) finish("the stream ended"); };
  state.finishSample = finish;
}

function stopSample() {
  if (state.stream) state.finishSample("stopped");
}

// ---- comparing runs ----------------------------------------------------------------------

async function compareRuns() {
  const text = $("text").value;
  const language = state.runs.filter((r) => r.type === "language model");
  const out = $("compare-out");
  out.replaceChildren();
  state.losses = {};
  for (const run of language) {
    const panel = document.createElement("div");
    panel.className = "run-panel";
    out.appendChild(panel);
    try {
      const reading = await api("/api/read", { run: run.name, text });
      state.losses[run.name] = reading.loss;
      const mean = reading.mean_loss === null ? "–" : reading.mean_loss.toFixed(3);
      panel.innerHTML = `<h4>${escapeHtml(run.name)} (${run.cell}): ${mean} nats/char</h4>`;
      const heat = document.createElement("div");
      heat.className = "heat";
      fillHeat(heat, text, reading.loss, (v) => lossColour(v));
      heat.title = "orange: surprising characters (−log p up to 5 nats)";
      panel.appendChild(heat);
    } catch (error) {
      panel.innerHTML = `<h4>${escapeHtml(run.name)}: ${escapeHtml(error.message)}</h4>`;
    }
  }
  const a = $("compare-a").value, b = $("compare-b").value;
  if (a !== b && state.losses[a] && state.losses[b]) {
    const panel = document.createElement("div");
    panel.className = "run-panel";
    panel.innerHTML = `<h4>${escapeHtml(a)} − ${escapeHtml(b)}: red where ${escapeHtml(a)} is more surprised, blue where ${escapeHtml(b)} is</h4>`;
    const heat = document.createElement("div");
    heat.className = "heat";
    const difference = state.losses[a].map((v, i) => (v === null ? null : (v - state.losses[b][i]) / 3));
    fillHeat(heat, text, difference);
    panel.appendChild(heat);
    out.appendChild(panel);
  }
  status(`compared ${language.length} run(s) on ${text.length.toLocaleString()} characters`);
}

// ---- task runs ---------------------------------------------------------------------------

async function runTask() {
  const run = $("task-run").value;
  const answer = await api("/api/task", { run, text: $("task-input").value });
  const out = $("task-out");
  out.innerHTML = `<p>output: <b id="task-output">${escapeHtml(answer.output)}</b></p>`;
  if (!answer.weights) {
    out.insertAdjacentHTML("beforeend", '<p class="muted">This run has no attention to show.</p>');
    return;
  }
  if (answer.image) {
    const canvas = document.createElement("canvas");
    const rows = answer.image.length, columns = answer.image[0].length;
    canvas.width = columns; canvas.height = rows;
    canvas.style.width = `${columns * 4}px`;
    const context = canvas.getContext("2d");
    const pixels = context.createImageData(columns, rows);
    answer.image.flat().forEach((v, k) => {
      const grey = Math.round(255 * (1 - Math.max(0, Math.min(1, v))));
      pixels.data.set([grey, grey, grey, 255], 4 * k);
    });
    context.putImageData(pixels, 0, 0);
    out.appendChild(canvas);
  }
  const table = document.createElement("table");
  table.className = "attention";
  const head = `<tr><th></th>${answer.source.map((s) => `<th class="source">${escapeHtml(s === " " ? "␣" : s)}</th>`).join("")}</tr>`;
  const body = answer.weights.map((row, t) => `<tr><th>${escapeHtml(answer.target[t])}</th>` +
    row.map((w, s) => `<td style="background:${attentionColour(w)}" data-out="${escapeHtml(answer.target[t])}" data-source="${escapeHtml(answer.source[s])}" data-weight="${w}"></td>`).join("") + "</tr>").join("");
  table.innerHTML = head + body;
  out.appendChild(table);
  out.insertAdjacentHTML("beforeend", '<p class="muted">Rows: output tokens; columns: the input; darker: more attention (α). Hover a cell for its weight.</p>');
}

function attentionColour(weight) {
  const v = Math.round(255 * (1 - weight));
  return `rgb(${v},${Math.round(v * 0.9 + 25)},255)`;
}

// ---- wiring ------------------------------------------------------------------------------

document.querySelectorAll(".tab").forEach((tab) => tab.addEventListener("click", () => showTab(tab.dataset.tab)));
$("run").addEventListener("change", () => { chooseRun(); state.unitPicked = false; guarded(readText); });
$("read-button").addEventListener("click", () => guarded(readText));
$("val-button").addEventListener("click", () => guarded(async () => {
  const answer = await api(`/api/validation?run=${encodeURIComponent(currentRun().name)}&start=${+$("val-start").value}&length=2000`);
  $("text").value = answer.text;
  await readText();
}));
for (const id of ["layer", "index"]) $(id).addEventListener("change", () => { state.unitPicked = true; guarded(showUnit); });
$("part").addEventListener("change", () => { if (state.parts) fillHeat($("heat"), state.text, state.parts[$("part").value]); markSelection(); });
document.addEventListener("click", (event) => {
  const button = event.target.closest(".unit-button");
  if (button) pickUnit(button.dataset.layer, button.dataset.index, button.dataset.part);
  const match = event.target.closest(".match");
  if (match && match.dataset.where === "text") {
    document.querySelector(`#heat span[data-i="${match.dataset.start}"]`)?.scrollIntoView({ block: "center" });
  }
});
$("heat").addEventListener("mouseover", (event) => {
  const i = event.target.dataset?.i;
  if (i !== undefined && state.parts) hover(event, tooltipFor(+i));
});
$("sample-heat").addEventListener("mouseover", (event) => {
  const i = event.target.dataset?.i;
  if (i !== undefined && $("sample-heat").dataset.done && state.parts && state.text === state.sampleText) hover(event, tooltipFor(+i));
});
document.querySelectorAll(".heat").forEach((heat) => heat.addEventListener("mouseleave", () => { $("tooltip").hidden = true; }));
$("heat").addEventListener("mouseup", selectionFromMouse);
for (const id of ["sel-start", "sel-end"]) $(id).addEventListener("change", markSelection);
$("threshold").addEventListener("input", () => { $("threshold-value").textContent = $("threshold").value; });
$("temperature").addEventListener("input", () => { $("temperature-value").textContent = $("temperature").value; });
$("find-units").addEventListener("click", () => guarded(findUnits));
$("match-text").addEventListener("click", () => guarded(() => findMatches("text")));
$("match-validation").addEventListener("click", () => guarded(() => findMatches("validation")));
$("sample-start").addEventListener("click", () => guarded(async () => startSample()));
$("sample-stop").addEventListener("click", stopSample);
$("compare-button").addEventListener("click", () => guarded(compareRuns));
$("task-run").addEventListener("change", chooseTaskRun);
$("task-button").addEventListener("click", () => guarded(runTask));
$("task-out").addEventListener("mouseover", (event) => {
  const cell = event.target.closest("td[data-weight]");
  if (cell) hover(event, `${escapeHtml(cell.dataset.out)} ← ${escapeHtml(cell.dataset.source)}: α = ${(+cell.dataset.weight).toFixed(3)}`);
});
$("task-out").addEventListener("mouseleave", () => { $("tooltip").hidden = true; });
guarded(start);

// A run's page: follows its server-sent events and redraws status, counts, stages and
// the progress timeline; stops at the `end` event (the run ended).
"use strict";
(function () {
  const data = JSON.parse(document.getElementById("run-data").textContent);
  const FINAL = ["completed", "completed_with_errors", "failed", "cancelled"];
  const $ = (id) => document.getElementById(id);
  let last = null;

  function bar(target, percent, status) {
    const progress = target.querySelector("progress");
    const label = target.querySelector(".pct");
    if (progress) progress.value = percent == null ? 0 : percent;
    if (label) label.textContent = (percent == null ? "–" : Math.round(percent)) + "%";
    const wrap = target.querySelector(".bar");
    if (wrap) wrap.className = "bar status-" + status;
  }
  function text(id, value) { const el = $(id); if (el) el.textContent = value == null ? "" : value; }
  function stageRow(stage) {
    const tr = document.createElement("tr");
    const add = (value) => { const td = tr.insertCell(); if (value instanceof Node) td.appendChild(value); else td.textContent = value; };
    const badge = document.createElement("span");
    badge.className = "badge stage-" + stage.status;
    badge.textContent = stage.status;
    const wrap = document.createElement("span");
    wrap.className = "bar status-" + stage.status;
    const progress = document.createElement("progress");
    progress.max = 100; progress.value = stage.percent || 0;
    const pct = document.createElement("span");
    pct.className = "pct"; pct.textContent = Math.round(stage.percent || 0) + "%";
    wrap.append(progress, pct);
    const records = stage.records || {};
    [stage.name, badge, wrap, stage.done, stage.failed, stage.total == null ? "?" : stage.total,
     records.fetched, records.staged, records.invalid].forEach(add);
    return tr;
  }
  function draw(doc) {
    const status = doc.status;
    const runStatus = $("run-status");
    runStatus.textContent = status;
    runStatus.className = "badge status-" + status;
    $("rolled-back").hidden = !doc.rolled_back;
    bar($("run-bar"), doc.percent, status);
    text("run-message", doc.message);
    text("run-pipeline", doc.pipeline);
    text("run-started", doc.started_at);
    text("run-updated", doc.updated_at);
    document.querySelectorAll("#counts td[data-key]").forEach((td) => {
      const [group, key] = td.dataset.key.split(".");
      td.textContent = (doc[group] || {})[key] || 0;
    });
    const rows = document.createDocumentFragment();
    (doc.stages || []).forEach((stage) => rows.appendChild(stageRow(stage)));
    $("stages").tBodies[0].replaceChildren(rows);
    const cancel = $("cancel-section");
    if (cancel && FINAL.includes(status)) cancel.hidden = true;
    timeline(doc);
  }
  function timeline(doc) {
    const key = doc.status + "|" + Math.floor(doc.percent || 0) + "|" + (doc.message || "");
    if (key === last) return;
    last = key;
    // The run's own clock: seconds since it started, as of its last progress change.
    const started = Date.parse(doc.started_at);
    const at = Date.parse(doc.updated_at) || Date.now();
    const seconds = Math.max(0, (at - (started || at)) / 1000);
    const li = document.createElement("li");
    li.textContent = new Date(at).toISOString().slice(11, 19) + " UTC  +" + seconds.toFixed(1) + " s  " + doc.status + "  " + (doc.percent || 0).toFixed(1) + "%" + (doc.message ? "  " + doc.message : "");
    $("timeline").appendChild(li);
    history();
  }

  // The history's spans as floating bars, one row each; refreshed at most every 10 s.
  const COLOURS = {completed: "#1a7f37", fired: "#8c959f", running: "#0969da", failed: "#cf222e",
                   "timed out": "#cf222e", cancelled: "#9a6700", terminated: "#cf222e"};
  let fetched = 0;
  let pending = null;
  function history() {
    const wait = Math.max(0, fetched + 10000 - Date.now());
    if (pending) return;
    pending = setTimeout(loadHistory, wait);
  }
  async function loadHistory() {
    fetched = Date.now();
    let answer;
    try {
      const response = await fetch("/api/v1/runs/" + encodeURIComponent(data.workflow_id) + "/timeline",
                                   {credentials: "same-origin", headers: {Accept: "application/json"}});
      if (!response.ok) { $("timeline-note").textContent = "No history: " + response.status; return; }
      answer = await response.json();
    } finally { pending = null; }
    drawHistory(answer);
  }
  function drawHistory(answer) {
    const spans = answer.spans;
    const marks = $("timeline-marks");
    marks.replaceChildren(...answer.marks.map((m) => {
      const li = document.createElement("li");
      li.textContent = "+" + m.at_s.toFixed(1) + " s  " + m.what;
      return li;
    }));
    if (answer.truncated) $("timeline-note").textContent += " (the first " + spans.length + " only)";
    if (typeof Chart === "undefined" || !spans.length) return;
    const end = Math.max(...spans.map((s) => s.end_s == null ? s.start_s : s.end_s),
                         ...answer.marks.map((m) => m.at_s), 0.001);
    const canvas = $("timeline-chart");
    canvas.parentElement.style.height = Math.max(140, 22 * spans.length + 60) + "px";
    const config = {
      type: "bar",
      data: {
        labels: spans.map((s) => s.name),
        datasets: [{
          data: spans.map((s) => [s.start_s, s.end_s == null ? end : s.end_s]),
          backgroundColor: spans.map((s) => COLOURS[s.outcome] || "#8c959f"),
          borderSkipped: false, barPercentage: 0.8, categoryPercentage: 1.0}]},
      options: {
        indexAxis: "y", animation: false, maintainAspectRatio: false,
        plugins: {legend: {display: false}, tooltip: {callbacks: {label: (ctx) => {
          const span = spans[ctx.dataIndex];
          const took = span.end_s == null ? "running" : (span.end_s - span.start_s).toFixed(2) + " s";
          return span.kind + ", " + span.outcome + ", +" + span.start_s.toFixed(2) + " s, " + took;
        }}}},
        scales: {x: {type: "linear", min: 0, title: {display: true, text: "seconds since the run started"}},
                 y: {ticks: {autoSkip: false, font: {size: 11}}}}}};
    const existing = Chart.getChart(canvas);
    if (existing) { existing.data = config.data; existing.update(); }
    else { new Chart(canvas, config); }
    canvas.dataset.spans = String(spans.length);
  }

  if (data.progress) draw(data.progress); else history();
  if (data.progress && FINAL.includes(data.progress.status)) return;
  const source = new EventSource("/api/v1/runs/" + encodeURIComponent(data.workflow_id) + "/events");
  source.addEventListener("progress", (event) => { $("unavailable").hidden = true; draw(JSON.parse(event.data)); });
  source.addEventListener("unavailable", (event) => {
    const el = $("unavailable");
    el.textContent = "No worker answers right now (" + JSON.parse(event.data).reason + "); the page goes on when one does.";
    el.hidden = false;
  });
  source.addEventListener("end", () => {
    source.close();
    // The run ended: its whole history now, not at the next 10 s turn.
    if (pending) clearTimeout(pending);
    pending = null;
    loadHistory();
  });
})();

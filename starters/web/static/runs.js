// The runs page: refreshes the first page of runs every 2 s from the API (the page's
// own filters), with the live progress of running runs (`live=true`).
"use strict";
(function () {
  const table = document.getElementById("runs");
  if (!table || new URLSearchParams(location.search).get("cursor")) return;
  const body = table.tBodies[0];
  const FINAL = ["completed", "completed_with_errors", "failed", "cancelled", "rolled_back"];

  function cell(row, content) {
    const td = row.insertCell();
    if (content instanceof Node) td.appendChild(content); else td.textContent = content;
    return td;
  }
  function badge(status) {
    const span = document.createElement("span");
    span.className = "badge status-" + status;
    span.textContent = status;
    return span;
  }
  function bar(percent, status) {
    const wrap = document.createElement("span");
    wrap.className = "bar status-" + status;
    const progress = document.createElement("progress");
    progress.max = 100;
    progress.value = percent == null ? 0 : percent;
    const label = document.createElement("span");
    label.className = "pct";
    label.textContent = (percent == null ? "–" : Math.round(percent)) + "%";
    wrap.append(progress, label);
    return wrap;
  }
  function time(iso, withDate) {
    if (!iso) return "";
    const d = new Date(iso);
    return withDate ? d.toISOString().replace("T", " ").slice(0, 19) : d.toISOString().slice(11, 19);
  }
  async function getJson(url) {
    const response = await fetch(url, {credentials: "same-origin", headers: {Accept: "application/json"}});
    if (response.status === 401) { location.href = "/login?next=" + encodeURIComponent(location.pathname + location.search); return null; }
    if (!response.ok) throw new Error(url + ": " + response.status);
    return response.json();
  }
  async function refresh() {
    const params = new URLSearchParams({limit: "50"});
    if (table.dataset.pipeline) params.set("pipeline", table.dataset.pipeline);
    if (table.dataset.status) params.set("status", table.dataset.status);
    // One request: the runs, with the live progress of the running ones.
    params.set("live", "true");
    const page = await getJson("/api/v1/runs?" + params);
    if (!page) return;
    const live = page.items.map((run) => run.progress);
    const rows = document.createDocumentFragment();
    page.items.forEach((run, i) => {
      const tr = document.createElement("tr");
      tr.dataset.workflowId = run.workflow_id;
      tr.dataset.runId = run.run_id;
      const status = live[i] ? live[i].status : run.status;
      tr.dataset.status = status;
      const link = document.createElement("a");
      link.href = "/runs/" + encodeURIComponent(run.workflow_id);
      link.textContent = run.workflow_id;
      cell(tr, link);
      cell(tr, run.pipeline);
      cell(tr, badge(status)).className = "status";
      const percent = live[i] ? live[i].percent : (FINAL.includes(run.status) ? run.percent : null);
      cell(tr, bar(percent, status)).className = "progress";
      cell(tr, time(run.started_at, true));
      cell(tr, time(run.finished_at, false));
      rows.appendChild(tr);
    });
    if (page.items.length) body.replaceChildren(rows);
  }
  async function loop() {
    try { await refresh(); } catch (e) { console.warn(e); }
    setTimeout(loop, 2000);
  }
  setTimeout(loop, 2000);
})();

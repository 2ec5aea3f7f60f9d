// The reconciliation page's trend chart (templates/btc/findings.html): per run, bars of
// the findings new and resolved, and a line of those open after the run. A file, not an
// inline script, as the dashboard's CSP allows scripts from 'self' only; the runs come
// as JSON in #trend-data, oldest first. Without Chart.js the table beside it remains.
(function () {
  "use strict";

  var source = document.getElementById("trend-data");
  var canvas = document.getElementById("trend-chart");
  if (!source || !(canvas instanceof HTMLCanvasElement) || typeof Chart === "undefined") {
    return;
  }
  var runs = JSON.parse(source.textContent || "[]");
  if (!Array.isArray(runs) || runs.length === 0) {
    return;
  }

  function label(run) {
    // Two lines: the start to the second, which a reader knows a run by, and the end
    // of its id, which tells apart runs started within the same second (Temporal's run
    // ids are UUIDv7: their start is the time, their end random); the whole id is in
    // the tooltip.
    var id = "\u2026" + String(run.run_id || "").slice(-8);
    return run.started_at ? [run.started_at.slice(0, 19).replace("T", " "), id] : id;
  }

  function column(key) {
    return runs.map(function (run) { return run[key]; });
  }

  new Chart(canvas, {
    data: {
      labels: runs.map(label),
      datasets: [
        { type: "bar", label: "new", data: column("new"), order: 2,
          backgroundColor: "rgba(214, 69, 65, 0.75)" },
        { type: "bar", label: "resolved", data: column("resolved"), order: 2,
          backgroundColor: "rgba(46, 160, 67, 0.75)" },
        { type: "line", label: "open after the run", data: column("open"), order: 1,
          borderColor: "rgb(31, 111, 235)", backgroundColor: "rgb(31, 111, 235)",
          tension: 0, pointRadius: 3 }
      ]
    },
    options: {
      // No animation: a screenshot taken as soon as the chart exists shows it whole.
      animation: false,
      responsive: true,
      aspectRatio: 3,
      interaction: { mode: "index", intersect: false },
      scales: {
        x: { title: { display: true, text: "reconciliation run (started)" } },
        y: { beginAtZero: true, ticks: { precision: 0 },
             title: { display: true, text: "findings" } }
      },
      plugins: {
        legend: { position: "bottom" },
        tooltip: {
          callbacks: {
            title: function (items) {
              var run = runs[items[0].dataIndex];
              return run.run_id + (run.status ? " (" + run.status + ")" : "");
            }
          }
        }
      }
    }
  });
  // For tests and screenshots: the chart is drawn.
  canvas.dataset.ready = "true";
})();

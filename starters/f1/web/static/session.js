// The F1 session page's charts (templates/f1/session.html): lap times per driver with the
// neutralised periods shaded, and tyre degradation per stint for one driver at a time.
// The data is the page's <script type="application/json" id="session-data">; no inline
// script, so the dashboard's CSP can stay `script-src 'self'`.
(function () {
  "use strict";

  var Chart = window.Chart;
  var source = document.getElementById("session-data");
  if (!Chart || !source) {
    return; // the tables still tell the story without charts
  }
  var data = JSON.parse(source.textContent);

  // Used when a driver has no team colour stored (upstreams without it, generated data).
  var PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
                 "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];
  var BANDS = {
    SC: {fill: "rgba(255, 193, 7, 0.18)", text: "#8a6d00"},
    VSC: {fill: "rgba(255, 152, 0, 0.12)", text: "#8a5200"},
    RED: {fill: "rgba(220, 53, 69, 0.16)", text: "#a71d2a"}
  };
  var COMPOUNDS = {
    SOFT: "#da291c", MEDIUM: "#e0a800", HARD: "#6c757d",
    INTERMEDIATE: "#43b02a", WET: "#0067ad"
  };

  // The q-quantile of numbers (linear between ranks), null for none.
  function quantile(values, q) {
    if (!values.length) {
      return null;
    }
    var sorted = values.slice().sort(function (a, b) { return a - b; });
    var rank = (sorted.length - 1) * q;
    var low = Math.floor(rank);
    var high = Math.min(low + 1, sorted.length - 1);
    return sorted[low] + (sorted[high] - sorted[low]) * (rank - low);
  }

  function seconds(value) {
    return value == null ? "-" : value.toFixed(3) + " s";
  }

  // Each neutralised lap range [from_lap, to_lap] on the chart area, in pixels (a lap n
  // spans n - 0.5 .. n + 0.5 on the linear lap axis); ranges off the axis are dropped.
  function bands(chart, ranges) {
    var x = chart.scales.x;
    var area = chart.chartArea;
    return (ranges || []).map(function (range) {
      return {
        range: range, style: BANDS[range.kind] || BANDS.SC,
        left: Math.max(x.getPixelForValue(range.from_lap - 0.5), area.left),
        right: Math.min(x.getPixelForValue(range.to_lap + 0.5), area.right)
      };
    }).filter(function (band) { return band.right > band.left; });
  }

  // Shades the neutralised periods behind the lines, and writes their kind over them
  // (after the lines, so no line hides it).
  var neutralisedBands = {
    id: "neutralisedBands",
    beforeDatasetsDraw: function (chart, args, options) {
      var area = chart.chartArea;
      var ctx = chart.ctx;
      ctx.save();
      bands(chart, options.ranges).forEach(function (band) {
        ctx.fillStyle = band.style.fill;
        ctx.fillRect(band.left, area.top, band.right - band.left, area.bottom - area.top);
      });
      ctx.restore();
    },
    afterDatasetsDraw: function (chart, args, options) {
      var ctx = chart.ctx;
      ctx.save();
      ctx.font = "bold 11px sans-serif";
      ctx.textAlign = "center";
      ctx.textBaseline = "top";
      bands(chart, options.ranges).forEach(function (band) {
        var label = band.range.kind;
        var middle = (band.left + band.right) / 2;
        var width = ctx.measureText(label).width + 6;
        ctx.fillStyle = "rgba(255, 255, 255, 0.85)";
        ctx.fillRect(middle - width / 2, chart.chartArea.top + 2, width, 15);
        ctx.fillStyle = band.style.text;
        ctx.fillText(label, middle, chart.chartArea.top + 4);
      });
      ctx.restore();
    }
  };

  function lapChart(canvas) {
    var times = [];
    var teamsSeen = {};
    var datasets = data.drivers.filter(function (d) { return d.laps.length; })
      .map(function (driver, index) {
        var colour = driver.team_colour || PALETTE[index % PALETTE.length];
        // Teammates share a colour: the second one's line is dashed.
        var team = driver.team_name || "#" + driver.driver_number;
        var dashed = driver.team_colour && teamsSeen[team];
        teamsSeen[team] = true;
        var points = driver.laps.map(function (lap) {
          if (lap.time_s != null) {
            times.push(lap.time_s);
          }
          return {x: lap.lap, y: lap.time_s, pit_in: lap.pit_in, pit_out: lap.pit_out,
                  neutralised: lap.neutralised};
        });
        return {
          label: driver.acronym, data: points, borderColor: colour, backgroundColor: colour,
          borderWidth: 1.5, borderDash: dashed ? [6, 3] : [], spanGaps: false,
          // No line into or out of a pit lap: a stop would draw a spike to the top of
          // the chart for every driver; the stints read as pieces, the stop as a mark.
          segment: {
            borderColor: function (ctx) {
              var a = points[ctx.p0DataIndex], b = points[ctx.p1DataIndex];
              var pit = function (p) { return p && (p.pit_in || p.pit_out); };
              return pit(a) || pit(b) ? "transparent" : undefined;
            }
          },
          pointRadius: function (ctx) {
            return ctx.raw && (ctx.raw.pit_in || ctx.raw.pit_out) ? 3 : 0;
          },
          pointStyle: function (ctx) {
            return ctx.raw && ctx.raw.pit_in ? "triangle" : "circle";
          },
          pointHoverRadius: 4
        };
      });
    // Pit, safety-car and (in qualifying) out and cool-down laps run far slower: cut the
    // axis at 1.2 x the lower quartile so the flying laps keep their resolution (the slow
    // ones leave the top of the chart). A quartile, not the median: in qualifying most
    // laps are slow ones.
    var quartile = quantile(times, 0.25);
    var yMax = quartile == null ? undefined : Math.ceil(quartile * 1.2);
    var yMin = times.length ? Math.floor(Math.min.apply(null, times) - 1) : undefined;
    return new Chart(canvas, {
      type: "line",
      data: {datasets: datasets},
      plugins: [neutralisedBands],
      options: {
        animation: false,
        interaction: {mode: "nearest", intersect: false},
        scales: {
          x: {type: "linear", min: 1, title: {display: true, text: "Lap"},
              ticks: {stepSize: 5, precision: 0}},
          // The cut's own bounds are no round numbers: no tick crowds the nearest one.
          y: {min: yMin, max: yMax, ticks: {includeBounds: false},
              title: {display: true, text: "Lap time (s)"}}
        },
        plugins: {
          neutralisedBands: {ranges: data.neutralised},
          legend: {position: "bottom", labels: {boxWidth: 12, boxHeight: 2}},
          tooltip: {
            callbacks: {
              title: function (items) { return items.length ? "Lap " + items[0].raw.x : ""; },
              label: function (item) {
                var raw = item.raw;
                var notes = [];
                if (raw.pit_in) { notes.push("pit in"); }
                if (raw.pit_out) { notes.push("pit out"); }
                if (raw.neutralised) { notes.push(raw.neutralised); }
                return item.dataset.label + " " + seconds(raw.y) +
                  (notes.length ? " (" + notes.join(", ") + ")" : "");
              }
            }
          }
        }
      }
    });
  }

  function stintColour(stint, index) {
    return COMPOUNDS[(stint.compound || "").toUpperCase()] || PALETTE[index % PALETTE.length];
  }

  // A driver's stints on the same compound share its colour: marker and line tell them
  // apart.
  var MARKERS = ["circle", "rect", "triangle", "rectRot", "crossRot", "star"];
  var DASHES = [[], [6, 4], [2, 3], [10, 3, 2, 3]];

  function degradationDatasets(driverNumber) {
    var datasets = [];
    var seen = {};
    data.stints.filter(function (s) { return s.driver_number === driverNumber; })
      .forEach(function (stint, index) {
        var colour = stintColour(stint, index);
        var repeat = seen[colour] || 0;
        seen[colour] = repeat + 1;
        var name = "Stint " + stint.stint_number + (stint.compound ? " " + stint.compound : "");
        var slope = stint.degradation_s_per_lap;
        datasets.push({
          type: "scatter", label: name + (slope == null ? " (no fit)" :
            " " + (slope >= 0 ? "+" : "") + slope.toFixed(3) + " s/lap"),
          data: stint.points.map(function (p) {
            return {x: p.tyre_age, y: p.fuel_corrected_s, lap: p.lap};
          }),
          borderColor: colour, backgroundColor: colour, pointRadius: 3.5,
          pointStyle: MARKERS[index % MARKERS.length]
        });
        if (stint.line) {
          datasets.push({
            type: "line", label: name + " fit",
            data: stint.line.map(function (p) { return {x: p.tyre_age, y: p.s}; }),
            borderColor: colour, borderWidth: 2, pointRadius: 0, fill: false,
            borderDash: DASHES[repeat % DASHES.length]
          });
        }
      });
    return datasets;
  }

  function degradationChart(canvas, select) {
    var chart = new Chart(canvas, {
      type: "scatter",
      data: {datasets: degradationDatasets(Number(select.value))},
      options: {
        animation: false,
        scales: {
          // Room around the outermost points, so none sits on the axes.
          x: {type: "linear", grace: 0.5, title: {display: true, text: "Tyre age (laps)"},
              ticks: {precision: 0}},
          y: {grace: "5%", title: {display: true, text: "Fuel-corrected lap time (s)"}}
        },
        plugins: {
          legend: {
            position: "bottom",
            // The fitted lines share their stint's entry.
            labels: {usePointStyle: true,
                     filter: function (item) { return !/ fit$/.test(item.text); }}
          },
          tooltip: {
            callbacks: {
              label: function (item) {
                var raw = item.raw;
                return raw.lap == null ? item.dataset.label + ": " + seconds(raw.y) :
                  "Lap " + raw.lap + ", age " + raw.x + ": " + seconds(raw.y);
              }
            }
          }
        }
      }
    });
    select.addEventListener("change", function () {
      chart.data.datasets = degradationDatasets(Number(select.value));
      chart.update();
    });
    return chart;
  }

  var lapCanvas = document.getElementById("lap-chart");
  if (lapCanvas) {
    lapChart(lapCanvas);
  }
  var degradationCanvas = document.getElementById("degradation-chart");
  var select = document.getElementById("degradation-driver");
  if (degradationCanvas && select && select.options.length) {
    degradationChart(degradationCanvas, select);
  }
}());

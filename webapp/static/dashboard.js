// Draws the dashboard's charts with ECharts from the JSON block #chart-data (no inline script:
// the page keeps a strict CSP). Each chart's numbers are also in the table beside it.
(function () {
  "use strict";
  var source = document.getElementById("chart-data");
  if (!source || !window.echarts) { return; }
  var data = JSON.parse(source.textContent);
  document.querySelectorAll("[data-chart]").forEach(function (box) {
    var chart = data[box.getAttribute("data-chart")];
    if (!chart) { return; }
    var series = [];
    for (var i = 1; i <= (chart.series || 1); i++) {
      series.push({name: chart.headers[i], type: "bar", data: chart.rows.map(function (r) { return r[i]; })});
    }
    var instance = window.echarts.init(box, null, {renderer: "canvas"});
    instance.setOption({
      animation: false, tooltip: {}, legend: {top: 0, data: series.map(function (s) { return s.name; })},
      grid: {left: 40, right: 16, top: 36, bottom: 72},
      xAxis: {type: "category", data: chart.rows.map(function (r) { return r[0]; }), axisLabel: {interval: 0, rotate: 30}},
      yAxis: {type: "value", minInterval: chart.series > 1 ? 0 : 1},
      series: series
    });
    box.setAttribute("data-rendered", "true");
    window.addEventListener("resize", function () { instance.resize(); });
  });
})();

// Draws the application's BPMN with bpmn-js: finished steps green, current steps highlighted.
(function () {
  "use strict";
  var box = document.getElementById("diagram");
  if (!box || !window.BpmnJS) { return; }
  var completed = JSON.parse(box.getAttribute("data-completed") || "[]");
  var current = JSON.parse(box.getAttribute("data-current") || "[]");
  var viewer = new window.BpmnJS({container: box});
  fetch(box.getAttribute("data-bpmn-url"), {credentials: "same-origin"})
    .then(function (response) { return response.text(); })
    .then(function (xml) { return viewer.importXML(xml); })
    .then(function () {
      var canvas = viewer.get("canvas");
      var registry = viewer.get("elementRegistry");
      canvas.zoom("fit-viewport");
      completed.forEach(function (id) { if (registry.get(id)) { canvas.addMarker(id, "step-done"); } });
      current.forEach(function (id) { if (registry.get(id)) { canvas.addMarker(id, "step-current"); } });
      box.setAttribute("data-rendered", "true");
    })
    .catch(function (error) {
      box.textContent = "流程图加载失败 / Diagram failed to load: " + error.message;
    });
})();

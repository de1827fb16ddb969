// Draws the application's BPMN with bpmn-js: finished steps green, current steps (a running call
// activity too) highlighted. The diagram is fitted to the box's width, but never below a zoom at
// which labels stay legible; then it is centred on the current step. Drag to pan, buttons to zoom.
(function () {
  "use strict";
  var box = document.getElementById("diagram");
  if (!box || !window.BpmnJS) { return; }
  var LEGIBLE = 0.85; // bpmn-js draws labels at 12 px: about 10 px on screen
  var MAX = 1.4;
  var completed = JSON.parse(box.getAttribute("data-completed") || "[]");
  var current = JSON.parse(box.getAttribute("data-current") || "[]");
  var viewer = new window.BpmnJS({container: box});

  function target(registry) {
    var ids = current.concat(completed.slice().reverse());
    for (var i = 0; i < ids.length; i += 1) {
      var el = registry.get(ids[i]);
      if (el && el.width) { return el; }
    }
    return null;
  }

  function centreOn(canvas, el) {
    var vb = canvas.viewbox();
    var x = el ? el.x + el.width / 2 - vb.width / 2 : vb.inner.x - 20;
    var y = el ? el.y + el.height / 2 - vb.height / 2 : vb.inner.y - 20;
    canvas.viewbox({x: x, y: y, width: vb.width, height: vb.height});
  }

  function focus(canvas, registry) {
    canvas.zoom("fit-viewport");
    var inner = canvas.viewbox().inner;
    var byWidth = (box.clientWidth - 24) / Math.max(inner.width, 1);
    canvas.zoom(Math.min(MAX, Math.max(LEGIBLE, byWidth)));
    centreOn(canvas, target(registry));
  }

  function wire(canvas, registry) {
    var tools = document.querySelectorAll("[data-zoom]");
    Array.prototype.forEach.call(tools, function (button) {
      button.addEventListener("click", function () {
        var how = button.getAttribute("data-zoom");
        if (how === "in") { canvas.zoom(Math.min(3, canvas.zoom() * 1.25), "auto"); }
        if (how === "out") { canvas.zoom(Math.max(0.2, canvas.zoom() / 1.25), "auto"); }
        if (how === "all") { canvas.zoom("fit-viewport"); }
        if (how === "current") { focus(canvas, registry); }
        box.setAttribute("data-zoom-level", canvas.zoom().toFixed(3));
      });
    });
    // Buttons pan too: a finger on a phone does not drag the canvas.
    var steps = {left: [1, 0], right: [-1, 0], up: [0, 1], down: [0, -1]};
    Array.prototype.forEach.call(document.querySelectorAll("[data-pan]"), function (button) {
      button.addEventListener("click", function () {
        var step = steps[button.getAttribute("data-pan")];
        canvas.scroll({dx: step[0] * box.clientWidth / 3, dy: step[1] * box.clientHeight / 3});
      });
    });
  }

  fetch(box.getAttribute("data-bpmn-url"), {credentials: "same-origin"})
    .then(function (response) { return response.text(); })
    .then(function (xml) { return viewer.importXML(xml); })
    .then(function () {
      var canvas = viewer.get("canvas");
      var registry = viewer.get("elementRegistry");
      completed.forEach(function (id) { if (registry.get(id)) { canvas.addMarker(id, "step-done"); } });
      current.forEach(function (id) { if (registry.get(id)) { canvas.addMarker(id, "step-current"); } });
      focus(canvas, registry);
      wire(canvas, registry);
      box.setAttribute("data-zoom-level", canvas.zoom().toFixed(3));
      box.setAttribute("data-rendered", "true");
    })
    .catch(function (error) {
      box.textContent = "流程图加载失败 / Diagram failed to load: " + error.message;
    });
})();

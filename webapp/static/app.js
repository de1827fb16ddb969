// Small progressive enhancements: repeatable rows, the live share total, uploads, confirmations.
(function () {
  "use strict";

  function renumber(container) {
    var name = container.getAttribute("data-array") || container.getAttribute("data-attachments");
    var rows = container.querySelectorAll("[data-rows] > [data-row]");
    rows.forEach(function (row, index) {
      row.querySelectorAll("[name]").forEach(function (input) {
        var prefix = name + ".";
        if (input.name.indexOf(prefix) === 0) {
          input.name = prefix + index + input.name.slice(prefix.length).replace(/^[^.]*/, "");
        }
      });
      var cell = row.querySelector("[data-row-number]");
      if (cell) { cell.textContent = index + 1; }
    });
    updateShare(container);
  }

  function addRow(container) {
    var template = container.querySelector("template[data-row-template]");
    var body = container.querySelector("[data-rows] tbody") || container.querySelector("[data-rows]");
    var html = template.innerHTML.replace(/__INDEX__/g, String(body.children.length));
    body.insertAdjacentHTML("beforeend", html);
    renumber(container);
    return body.lastElementChild;
  }

  function updateShare(container) {
    var out = container.querySelector("[data-share-total]");
    if (!out) { return; }
    var total = 0;
    container.querySelectorAll("input[data-share]").forEach(function (input) {
      var value = parseFloat(input.value);
      if (!isNaN(value)) { total += Math.round(value * 100); }
    });
    out.textContent = String(total / 100);
    out.classList.toggle("ok", total === 10000);
  }

  function upload(input, done) {
    var status = input.closest(".field").querySelector(".upload-status");
    var file = input.files[0];
    if (!file) { return; }
    var data = new FormData();
    data.append("file", file);
    data.append("csrf_token", document.querySelector("input[name=csrf_token]").value);
    status.classList.remove("error");
    status.textContent = "上传中… / Uploading…";
    fetch(input.getAttribute("data-upload-url"), {method: "POST", body: data, headers: {"Accept": "application/json"},
                                                  credentials: "same-origin"})
      .then(function (response) { return response.json().then(function (body) { return {ok: response.ok, body: body}; }); })
      .then(function (result) {
        if (!result.ok) { throw new Error(result.body.error || "上传失败"); }
        status.textContent = "✓ " + result.body.filename;
        done(result.body);
        input.value = "";
      })
      .catch(function (error) { status.classList.add("error"); status.textContent = error.message; });
  }

  document.querySelectorAll("[data-array], [data-attachments]").forEach(function (container) {
    container.addEventListener("click", function (event) {
      if (event.target.matches("[data-add-row]")) { addRow(container); }
      if (event.target.matches("[data-remove-row]")) { event.target.closest("[data-row]").remove(); renumber(container); }
    });
    container.addEventListener("input", function () { updateShare(container); });
    updateShare(container);
  });

  document.querySelectorAll("[data-attachments] input[type=file]").forEach(function (input) {
    var container = input.closest("[data-attachments]");
    input.addEventListener("change", function () {
      upload(input, function (doc) {
        var row = addRow(container);
        row.querySelector("[data-document-id]").value = doc.id;
        var link = row.querySelector("[data-document-link]");
        link.href = doc.url;
        link.textContent = doc.filename;
      });
    });
  });

  document.querySelectorAll("[data-single-document] input[type=file]").forEach(function (input) {
    var field = input.closest("[data-single-document]");
    input.addEventListener("change", function () {
      upload(input, function (doc) {
        field.querySelector("input[type=hidden]").value = doc.id;
        field.querySelector(".doc-current").innerHTML = "";
        var link = document.createElement("a");
        link.href = doc.url;
        link.textContent = doc.filename;
        field.querySelector(".doc-current").appendChild(link);
      });
    });
  });

  document.querySelectorAll("form[data-confirm]").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (!window.confirm(form.getAttribute("data-confirm"))) { event.preventDefault(); }
    });
  });

  // A form came back with errors: show its summary (it may sit below the notice being answered).
  var summary = document.querySelector(".error-summary");
  if (summary) {
    summary.setAttribute("tabindex", "-1");
    summary.scrollIntoView({block: "start"});
    summary.focus({preventScroll: true});
  }

  // The error summary's links: bring the field into view and put the cursor in it (a plain
  // fragment link only scrolls, and not to a table cell inside a scrolling box).
  document.querySelectorAll("a[data-error-link]").forEach(function (link) {
    link.addEventListener("click", function (event) {
      var target = document.getElementById(link.getAttribute("href").slice(1));
      if (!target) { return; }
      var field = target.matches("input, select, textarea") ? target
        : target.querySelector("input:not([type=hidden]), select, textarea");
      event.preventDefault();
      (field || target).scrollIntoView({block: "center"});
      if (field) { field.focus({preventScroll: true}); }
      window.history.replaceState(null, "", link.getAttribute("href"));
    });
  });

  // "Back" on error pages: no javascript: URL (the CSP forbids inline script); the href is the fallback.
  document.querySelectorAll("a[data-history-back]").forEach(function (link) {
    link.addEventListener("click", function (event) {
      if (window.history.length > 1) { event.preventDefault(); window.history.back(); }
    });
  });
})();

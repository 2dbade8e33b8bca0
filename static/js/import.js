// Polls the import job's status and updates the progress bar and the error report.
(function () {
  "use strict";
  var box = document.getElementById("import-job");
  if (!box) return;
  var url = box.dataset.statusUrl;
  function cell(row, text, cls) {
    var td = document.createElement("td");
    td.textContent = text;  // textContent: never HTML from the file
    if (cls) td.className = cls;
    row.appendChild(td);
  }
  function poll() {
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.json(); })
      .then(function (d) {
        document.getElementById("job-status").textContent = d.status_label;
        document.getElementById("job-progress").value = d.finished ? 100 : d.percent;
        if (!d.finished) { window.setTimeout(poll, 1000); return; }
        if (d.status === "done") {
          if (document.getElementById("job-result").hidden) window.location.reload();
        } else {
          var body = document.getElementById("job-error-rows");
          body.textContent = "";
          d.errors.forEach(function (e) {
            var tr = document.createElement("tr");
            cell(tr, e.line || "", "num"); cell(tr, e.column); cell(tr, e.message);
            body.appendChild(tr);
          });
          var more = document.getElementById("job-error-count");
          more.textContent = d.error_count > d.errors.length
            ? more.dataset.moreText.replace("{count}", d.error_count).replace("{shown}", d.errors.length)
            : "";
          document.getElementById("job-errors").hidden = false;
        }
      })
      .catch(function () { window.setTimeout(poll, 3000); });
  }
  poll();
})();

// Polls the export job's status until the task has finished (the progress bar and
// "n of N sessions" follow the task's batches), then reloads the page, which shows the
// download link (or the failure's message).
(function () {
  "use strict";
  var box = document.getElementById("export-job");
  if (!box || box.dataset.finished === "true") return;
  var url = box.dataset.statusUrl;
  function poll() {
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.json(); })
      .then(function (d) {
        document.getElementById("job-status").textContent = d.status_label;
        var bar = document.getElementById("job-progress");
        if (bar) bar.value = d.percent;
        var text = document.getElementById("job-progress-text");
        if (text && d.progress_text) {
          text.textContent = d.progress_text;  // "n of N sessions", from the server
          text.hidden = false;
        }
        if (d.finished) { window.location.reload(); return; }
        window.setTimeout(poll, 1000);
      })
      .catch(function () { window.setTimeout(poll, 3000); });
  }
  poll();
})();

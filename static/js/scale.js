/* The 10 cm scale widget: tap to place, drag to move, arrow keys for accessibility.
 * value = position / line width * 10, rounded to 0.1 and clamped to 0.0-10.0.
 * The server parses and validates the values again (measures.services.ScoreInput). */
(function () {
  "use strict";
  var form = document.getElementById("scale-form");
  if (!form) return;
  var confirmBtn = document.getElementById("confirm");
  var inputs = Array.prototype.slice.call(form.querySelectorAll("input[type=hidden][name^=item]"));
  var draftTimer = null;

  function round1(v) { return Math.round(v * 10) / 10; }
  function clamp(v) { return Math.min(10, Math.max(0, v)); }

  function csrf() {
    var el = form.querySelector("input[name=csrfmiddlewaretoken]");
    return el ? el.value : "";
  }

  function allMarked() {
    return inputs.every(function (i) { return i.value !== ""; });
  }

  function saveDraft() {
    var url = form.getAttribute("data-draft-url");
    if (!url) return;
    fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf() },
      body: JSON.stringify({ items: inputs.map(function (i) { return i.value; }) })
    }).catch(function () { /* offline: the marks stay on the page */ });
  }

  function changed() {
    confirmBtn.disabled = !allMarked();
    window.clearTimeout(draftTimer);
    draftTimer = window.setTimeout(saveDraft, 500);
  }

  // The value as read out: "6,4 cm" in Danish, "6.4 cm" in English.
  var decimalComma = document.documentElement.lang === "da";

  function setup(hit) {
    var track = hit.querySelector(".scale-track");
    var marker = hit.querySelector(".scale-marker");
    var input = document.getElementById(hit.getAttribute("data-input"));
    var dragging = false;

    function show(v) {
      var text = v.toFixed(1);
      input.value = text;
      hit.setAttribute("aria-valuenow", text);
      hit.setAttribute("aria-valuetext", (decimalComma ? text.replace(".", ",") : text) + " cm");
      marker.hidden = false;
      marker.style.left = (v * 10) + "%";
      hit.classList.add("marked");
    }
    function set(v) { show(clamp(round1(v))); changed(); }
    function fromPointer(e) {
      var r = track.getBoundingClientRect();
      set((e.clientX - r.left) / r.width * 10);
    }
    if (input.value !== "") show(clamp(parseFloat(input.value.replace(",", "."))));

    hit.addEventListener("pointerdown", function (e) {
      if (e.button !== undefined && e.button > 0) return;
      e.preventDefault();
      dragging = true;
      try { hit.setPointerCapture(e.pointerId); } catch (err) { /* synthetic events */ }
      hit.classList.add("dragging");
      fromPointer(e);
    });
    hit.addEventListener("pointermove", function (e) { if (dragging) fromPointer(e); });
    function end(e) {
      if (!dragging) return;
      dragging = false;
      hit.classList.remove("dragging");
      try { hit.releasePointerCapture(e.pointerId); } catch (err) { /* already released */ }
    }
    hit.addEventListener("pointerup", end);
    hit.addEventListener("pointercancel", end);
    hit.addEventListener("keydown", function (e) {
      var now = input.value === "" ? 5 : parseFloat(input.value);
      var step = e.shiftKey ? 1 : 0.1;
      var next = null;
      if (e.key === "ArrowRight" || e.key === "ArrowUp") next = now + step;
      else if (e.key === "ArrowLeft" || e.key === "ArrowDown") next = now - step;
      else if (e.key === "PageUp") next = now + 1;
      else if (e.key === "PageDown") next = now - 1;
      else if (e.key === "Home") next = 0;
      else if (e.key === "End") next = 10;
      if (next === null) return;
      e.preventDefault();
      set(next);
    });
  }

  Array.prototype.forEach.call(form.querySelectorAll(".scale-hit"), setup);
  confirmBtn.disabled = !allMarked();
  form.addEventListener("submit", function (e) {
    if (!allMarked()) { e.preventDefault(); return; }
    window.clearTimeout(draftTimer);
    confirmBtn.disabled = true;
  });
})();

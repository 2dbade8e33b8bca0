// Draws the dashboards' plotly figures: each [data-figure] element names the id of a
// json_script block holding {data, layout, config}. A file, not an inline script, so
// that the Content-Security-Policy can forbid inline scripts.
(function () {
  "use strict";
  var da = document.documentElement.lang === "da";
  // The words of the tables below the figures (translated in stats/_base.html).
  var script = document.currentScript;
  var valuesLabel = (script && script.dataset.valuesLabel) || "The values";
  var noValues = (script && script.dataset.noValues) || "No values.";

  function text(v) {
    if (v === null || v === undefined || v === "") return "–";
    if (typeof v !== "number") return String(v);
    var s = String(Math.round(v * 10) / 10);
    return da ? s.replace(".", ",") : s;
  }

  // The plotted values as a table under the figure, folded away (WCAG 1.1.1: the figure's
  // text alternative; the figure itself is an image named by its heading). One column per
  // line or bar, one row per value on the x axis; the texts written on the figure (the
  // cutoff lines' labels) above it; without either, that it shows no values. A box (the
  // spread) has its summary in words on the page instead.
  function valuesTable(el, data, layout) {
    if (data.some(function (t) { return t.type === "box"; })) return;
    var traces = data.filter(function (t) { return t.name && t.x && t.y; });
    var notes = (layout.annotations || []).map(function (a) { return a.text; }).filter(Boolean);
    var xs = [];
    traces.forEach(function (t) {
      t.x.forEach(function (x) { if (xs.indexOf(x) < 0) xs.push(x); });
    });
    if (!xs.length && !notes.length) notes = [noValues];
    var details = document.createElement("details");
    details.className = "figure-values";
    var summary = document.createElement("summary");
    summary.textContent = valuesLabel;
    details.appendChild(summary);
    if (notes.length) {
      var p = document.createElement("p");
      p.textContent = notes.join("; ");
      details.appendChild(p);
    }
    if (!xs.length) {
      el.insertAdjacentElement("afterend", details);
      return;
    }
    var table = document.createElement("table");
    table.className = "stats-table";
    var head = table.createTHead().insertRow();
    var xTitle = layout.xaxis && layout.xaxis.title && layout.xaxis.title.text;
    [xTitle || ""].concat(traces.map(function (t) { return t.name; })).forEach(function (name) {
      var th = document.createElement("th");
      th.scope = "col";
      th.textContent = name;
      head.appendChild(th);
    });
    var body = table.createTBody();
    xs.forEach(function (x) {
      var row = body.insertRow();
      var th = document.createElement("th");
      th.scope = "row";
      th.textContent = text(x);
      row.appendChild(th);
      traces.forEach(function (t) {
        var i = t.x.indexOf(x);
        row.insertCell().textContent = text(i < 0 ? null : t.y[i]);
      });
    });
    details.appendChild(table);
    el.insertAdjacentElement("afterend", details);
  }

  document.querySelectorAll("[data-figure]").forEach(function (el) {
    var fig = JSON.parse(document.getElementById(el.dataset.figure).textContent);
    // Numbers in the page's language: a decimal comma in Danish.
    var layout = Object.assign({separators: da ? ",." : ".,"}, fig.layout);
    // On a touch screen (the therapist's iPad) a finger on a figure must scroll the page:
    // plotly's drag would zoom instead, with no way back on an iPad but an English
    // "Double-click to zoom back out". With a mouse the zoom stays.
    if (window.matchMedia("(pointer: coarse)").matches) {
      layout.dragmode = false;
      Object.keys(layout).concat(["xaxis", "yaxis"]).forEach(function (key) {
        if (/^[xy]axis\d*$/.test(key)) layout[key] = Object.assign({}, layout[key], {fixedrange: true});
      });
    }
    // Month and day names in the page's language (the locale of js/plotly-locale-da.js).
    Plotly.newPlot(el, fig.data, layout, Object.assign({responsive: true, displaylogo: false, displayModeBar: false, locale: da ? "da" : "en"}, fig.config || {}));
    valuesTable(el, fig.data, fig.layout);
  });
})();

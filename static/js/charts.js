// Draws the dashboards' plotly figures: each [data-figure] element names the id of a
// json_script block holding {data, layout, config}. A file, not an inline script, so
// that the Content-Security-Policy can forbid inline scripts.
document.querySelectorAll("[data-figure]").forEach(function (el) {
  var fig = JSON.parse(document.getElementById(el.dataset.figure).textContent);
  var da = document.documentElement.lang === "da";
  // Numbers in the page's language: a decimal comma in Danish.
  var layout = Object.assign({separators: da ? ",." : ".,"}, fig.layout);
  // Month and day names in the page's language (the locale of js/plotly-locale-da.js).
  Plotly.newPlot(el, fig.data, layout, Object.assign({responsive: true, displaylogo: false, displayModeBar: false, locale: da ? "da" : "en"}, fig.config || {}));
});

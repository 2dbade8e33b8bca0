// Draws the dashboards' plotly figures: each [data-figure] element names the id of a
// json_script block holding {data, layout, config}. A file, not an inline script, so
// that the Content-Security-Policy can forbid inline scripts.
document.querySelectorAll("[data-figure]").forEach(function (el) {
  var fig = JSON.parse(document.getElementById(el.dataset.figure).textContent);
  var da = document.documentElement.lang === "da";
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
});

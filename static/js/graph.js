/* Draws the client graph from the figure JSON built by measures/charts.py. */
(function () {
  "use strict";
  var el = document.getElementById("graph");
  var fig = document.getElementById("graph-figure");
  if (!el || !fig || !window.Plotly) return;
  var figure = JSON.parse(fig.textContent);
  var config = JSON.parse(document.getElementById("graph-config").textContent);
  var da = document.documentElement.lang === "da";
  // Numbers in the page's language: a decimal comma in Danish.
  var layout = Object.assign({separators: da ? ",." : ".,"}, figure.layout);
  // Month and day names in the page's language (js/plotly-locale-da.js registers "da").
  window.Plotly.newPlot(el, figure.data, layout, Object.assign({locale: da ? "da" : "en"}, config));
  window.addEventListener("orientationchange", function () {
    window.setTimeout(function () { window.Plotly.Plots.resize(el); }, 200);
  });
})();

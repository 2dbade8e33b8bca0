/* Danish for plotly (month and day names on date axes, hover dates), registered as the
   locale "da" and used when the page is Danish (config.locale; see
   templates/stats/_base.html and static/js/graph.js). Our own file, no CDN.
   The decimal comma and the thousands point are the same as the charts' layout.separators
   (",."), which plotly applies over the locale's. */
(function () {
  "use strict";
  if (!window.Plotly) return;
  window.Plotly.register({
    moduleType: "locale",
    name: "da",
    dictionary: {},
    format: {
      days: ["søndag", "mandag", "tirsdag", "onsdag", "torsdag", "fredag", "lørdag"],
      shortDays: ["søn", "man", "tir", "ons", "tor", "fre", "lør"],
      months: [
        "januar", "februar", "marts", "april", "maj", "juni",
        "juli", "august", "september", "oktober", "november", "december"
      ],
      shortMonths: [
        "jan", "feb", "mar", "apr", "maj", "jun",
        "jul", "aug", "sep", "okt", "nov", "dec"
      ],
      date: "%d.%m.%Y",
      decimal: ",",
      thousands: "."
    }
  });
})();

/* Swagger UI's page structure for assistive technology (docs/accessibility.md). Swagger UI
 * draws its page itself (React): its title block lies outside any landmark and its
 * headings skip a level (h1 title, then h3 per tag, h4 "Schemas"). This sets a landmark
 * role and the headings' outline levels on what it draws, again after each redraw; only
 * attributes that Swagger UI does not manage itself, so its own rendering is unchanged. */
(function () {
  "use strict";
  var root = document.getElementById("swagger-ui");
  if (!root) return;

  function fix() {
    root.querySelectorAll(".information-container:not([role])").forEach(function (el) {
      el.setAttribute("role", "banner");
    });
    root.querySelectorAll(".scheme-container:not([role])").forEach(function (el) {
      el.setAttribute("role", "region");
      el.setAttribute("aria-label", "Authorization");
    });
    root.querySelectorAll("section.models:not([role])").forEach(function (el) {
      el.setAttribute("role", "region");
      el.setAttribute("aria-label", "Schemas");
    });
    // Tags and "Schemas" are the outline's second level, under the title (h1).
    root.querySelectorAll("h3.opblock-tag:not([aria-level]), section.models h4:not([aria-level])").forEach(function (el) {
      el.setAttribute("aria-level", "2");
    });
  }

  new MutationObserver(fix).observe(root, { childList: true, subtree: true });
  fix();
})();

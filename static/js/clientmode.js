/* Client mode: Back stays on this page. The real guard is server-side
 * (measures.clientmode.ClientModeMiddleware redirects every other page here). */
(function () {
  "use strict";
  history.replaceState({ clientMode: true }, "", location.href);
  history.pushState({ clientMode: true }, "", location.href);
  window.addEventListener("popstate", function () {
    history.pushState({ clientMode: true }, "", location.href);
  });
})();

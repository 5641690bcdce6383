// The ops page fetches itself again every few seconds and swaps in the fresh figures and charts (drawn by the
// server), so the page stays where it was scrolled; once the session has ended it reloads onto the sign-in page.
(function () {
  "use strict";
  var panel = document.getElementById("ops-live");
  if (!panel) return;
  var every = Number(panel.getAttribute("data-refresh-s") || 5) * 1000;

  function refresh() {
    fetch(window.location.href, { headers: { Accept: "text/html" }, credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (html === null) { window.setTimeout(refresh, every); return; }  // a passing error: try again
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("ops-live");
        if (!fresh) { window.location.reload(); return; }
        panel.replaceWith(fresh);
        panel = fresh;
        window.setTimeout(refresh, every);
      })
      .catch(function () { window.setTimeout(refresh, every); });
  }

  window.setTimeout(refresh, every);
})();

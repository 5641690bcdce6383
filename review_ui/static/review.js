// Keyboard shortcuts for working the queue all day; every shortcut is listed on the page it works on.
// Elements carrying data-key="<key>" are the targets: buttons and links are clicked, fields focused.
(function () {
  "use strict";

  function typing(el) {
    return el && (el.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(el.tagName));
  }

  function rows() {
    var table = document.querySelector("table[data-rows]");
    return table ? Array.prototype.slice.call(table.querySelectorAll("tbody tr[data-href]")) : [];
  }

  function select(list, index) {
    list.forEach(function (r) { r.classList.remove("selected"); r.removeAttribute("aria-selected"); });
    var row = list[Math.max(0, Math.min(index, list.length - 1))];
    row.classList.add("selected");
    row.setAttribute("aria-selected", "true");
    row.scrollIntoView({ block: "nearest" });
  }

  // The queue: j/k move the selection, Enter opens it; a click anywhere on a row opens it.
  function queueKey(key) {
    var list = rows();
    if (!list.length) return false;
    var current = list.findIndex(function (r) { return r.classList.contains("selected"); });
    if (key === "j" || key === "k") {
      select(list, current < 0 ? 0 : current + (key === "j" ? 1 : -1));
      return true;
    }
    if ((key === "Enter" || key === "o") && current >= 0) {
      window.location.href = list[current].dataset.href;
      return true;
    }
    return false;
  }

  function togglePlay() {
    var video = document.getElementById("clip");
    if (!video) return false;
    if (video.paused) { video.play(); } else { video.pause(); }
    return true;
  }

  // ? shows the keyboard help over the page; ? again or Escape hides it.
  function toggleHelp(show) {
    var help = document.getElementById("keys-help");
    if (!help) return false;
    help.hidden = show === undefined ? !help.hidden : !show;
    return true;
  }

  // v arms the void: the numbered reasons are marked and the next digit picks one (and sends it); any other key
  // disarms it, so a stray v never voids a case.
  var voiding = false;

  function armVoid(on) {
    var reasons = document.getElementById("void-reasons");
    voiding = Boolean(on && reasons);
    if (reasons) reasons.classList.toggle("armed", voiding);
    return Boolean(reasons);
  }

  // 0 opens the typed reason instead (sent with Ctrl+Enter).
  function pickReason(key) {
    armVoid(false);
    var typed = document.getElementById("reason");
    if (key === "0" && typed) { typed.focus(); return true; }
    var button = document.querySelector('[data-void-reason="' + key + '"]');
    if (button) button.click();
    return true;
  }

  // Keys of the case page and of every page: true when the key was used.
  function pageKey(e) {
    if (voiding) return pickReason(e.key);
    if (e.key === "?") return toggleHelp();
    if (e.key === "Escape") return toggleHelp(false);
    if (e.key === "v") return armVoid(true);
    if (e.key === "p" || e.key === " ") return togglePlay();
    // Enter confirms on the case page, unless a link or button has the focus and so its own meaning.
    var key = e.key === "Enter" && e.target === document.body ? "c" : e.key;
    var target = document.querySelector('[data-key="' + key + '"]');
    if (!target) return false;
    if (typing(target)) { target.focus(); } else { target.click(); }
    return true;
  }

  document.addEventListener("keydown", function (e) {
    if (typing(e.target)) {
      // Ctrl+Enter sends the void reason; Escape leaves the field so shortcuts work again.
      if (e.key === "Enter" && (e.ctrlKey || e.metaKey) && e.target.form) {
        e.preventDefault();
        e.target.form.requestSubmit();
      } else if (e.key === "Escape") {
        e.target.blur();
      }
      return;
    }
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    if (queueKey(e.key) || pageKey(e)) e.preventDefault();
  });

  document.addEventListener("click", function (e) {
    var row = e.target.closest("tr[data-href]");
    if (row && !e.target.closest("a")) window.location.href = row.dataset.href;
  });

  // One decision per page: a second key press or click while the first is on its way does nothing.
  document.addEventListener("submit", function (e) {
    if (e.target.dataset.sent) { e.preventDefault(); return; }
    e.target.dataset.sent = "1";
  });
})();

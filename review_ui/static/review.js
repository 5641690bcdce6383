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
    if (queueKey(e.key) || (e.key === " " && togglePlay())) {
      e.preventDefault();
      return;
    }
    var target = document.querySelector('[data-key="' + e.key + '"]');
    if (!target) return;
    e.preventDefault();
    if (typing(target)) { target.focus(); } else { target.click(); }
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

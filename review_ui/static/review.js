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

  function clip() { return document.getElementById("clip"); }

  function togglePlay() {
    var video = clip();
    if (!video) return false;
    if (video.paused) { video.play(); } else { video.pause(); }
    return true;
  }

  // < and > (or the buttons) step through the speeds offered; the pressed button shows the one in use.
  var SPEEDS = [0.25, 0.5, 1, 2];

  function setSpeed(speed) {
    var video = clip();
    if (!video) return false;
    video.playbackRate = speed;
    document.querySelectorAll("[data-speed]").forEach(function (b) {
      b.setAttribute("aria-pressed", String(Number(b.dataset.speed) === speed));
    });
    return true;
  }

  function stepSpeed(by) {
    var video = clip();
    if (!video) return false;
    var i = SPEEDS.indexOf(video.playbackRate);
    return setSpeed(SPEEDS[Math.max(0, Math.min(SPEEDS.length - 1, (i < 0 ? 2 : i) + by))]);
  }

  // , and . step one frame of the clip (its rate from the evidence manifest), pausing it first.
  function stepFrame(by) {
    var video = clip();
    if (!video) return false;
    video.pause();
    var frame = 1 / (Number(video.dataset.fps) || 25);
    video.currentTime = Math.max(0, Math.min(video.duration || 0, video.currentTime + by * frame));
    return true;
  }

  function toggleZones() {
    if (!document.querySelector("svg.zones")) return false;
    var hidden = document.body.classList.toggle("zones-hidden");
    var button = document.querySelector("[data-zones-toggle]");
    if (button) button.setAttribute("aria-pressed", String(!hidden));
    return true;
  }

  // ? shows the keyboard help over the page; ? again or Escape hides it.
  function toggleHelp(show) {
    var help = document.getElementById("keys-help");
    if (!help) return false;
    help.hidden = show === undefined ? !help.hidden : !show;
    return true;
  }

  // v arms the void, s the subtype: the numbered list is marked and the next digit picks one (and sends it); any
  // other key disarms it, so a stray v never voids a case.
  var CHOICES = { v: ["void-reasons", "data-void-reason"], s: ["subtypes", "data-subtype"] };
  var armed = null;

  function arm(key) {
    var list = key && document.getElementById(CHOICES[key][0]);
    if (armed) document.getElementById(CHOICES[armed][0]).classList.remove("armed");
    armed = list ? key : null;
    if (list) list.classList.add("armed");
    return Boolean(list);
  }

  // After v, 0 opens the typed reason instead (sent with Ctrl+Enter).
  function pick(key) {
    var choice = armed;
    arm(null);
    var typed = document.getElementById("reason");
    if (choice === "v" && key === "0" && typed) { typed.focus(); return true; }
    var button = document.querySelector("[" + CHOICES[choice][1] + '="' + key + '"]');
    if (button) button.click();
    return true;
  }

  // Keys of the case page and of every page: true when the key was used.
  function pageKey(e) {
    if (armed) return pick(e.key);
    if (e.key === "?") return toggleHelp();
    if (e.key === "Escape") return toggleHelp(false);
    if (e.key === "v" || e.key === "s") return arm(e.key);
    if (e.key === "p" || e.key === " ") return togglePlay();
    if (e.key === "<" || e.key === ">") return stepSpeed(e.key === ">" ? 1 : -1);
    if (e.key === "," || e.key === ".") return stepFrame(e.key === "." ? 1 : -1);
    if (e.key === "z") return toggleZones();
    // Enter confirms on the case page, unless a link or button has the focus and so its own meaning.
    var key = e.key === "Enter" && e.target === document.body ? "c" : e.key;
    var target = document.querySelector('[data-key="' + key + '"]');
    if (!target) return false;
    if (typing(target)) { target.focus(); if (target.select) target.select(); } else { target.click(); }
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
    var control = e.target.closest("[data-speed], [data-step], [data-zones-toggle]");
    if (control) {
      if (control.dataset.speed) setSpeed(Number(control.dataset.speed));
      if (control.dataset.step) stepFrame(Number(control.dataset.step));
      if (control.hasAttribute("data-zones-toggle")) toggleZones();
      return;
    }
    var row = e.target.closest("tr[data-href]");
    if (row && !e.target.closest("a")) window.location.href = row.dataset.href;
  });

  // One decision per page: a second key press or click while the first is on its way does nothing.
  document.addEventListener("submit", function (e) {
    if (e.target.dataset.sent) { e.preventDefault(); return; }
    e.target.dataset.sent = "1";
  });
})();

// fixahead console: enhancements only. Every page and form works without this file.
"use strict";
(function () {
  // Buttons that ask before they act: <button data-confirm="Dismiss this ticket?">.
  document.addEventListener("click", function (e) {
    var b = e.target.closest("[data-confirm]");
    if (b && !window.confirm(b.getAttribute("data-confirm"))) {
      e.preventDefault();
    }
  });

  // Forms marked data-enhance are sent in the background; the page's <main> is replaced
  // with the answer's, so an action needs no full reload. Without script they post and
  // redirect as usual.
  document.addEventListener("submit", function (e) {
    var form = e.target;
    if (!form.matches("form[data-enhance]") || e.defaultPrevented) {
      return;
    }
    e.preventDefault();
    var buttons = form.querySelectorAll("button");
    buttons.forEach(function (b) { b.disabled = true; });
    fetch(form.action, {
      method: "POST",
      body: new URLSearchParams(new FormData(form)),
      credentials: "same-origin",
      headers: { "Accept": "text/html" }
    }).then(function (r) {
      // Only a redirect's target is a page to stay on: an answer to the POST itself
      // (a refused form, a password shown once) has the POST's URL, which a reload
      // or a bookmark could not GET.
      return r.text().then(function (html) {
        return { url: r.redirected ? r.url : null, html: html };
      });
    }).then(function (r) {
      var doc = new DOMParser().parseFromString(r.html, "text/html");
      var main = doc.querySelector("main");
      if (main) {
        document.querySelector("main").replaceWith(main);
        if (r.url && r.url !== window.location.href) {
          window.history.replaceState(null, "", r.url);
        }
        document.title = doc.title;
        document.dispatchEvent(new CustomEvent("fixahead:replaced"));
      } else {
        window.location.reload();
      }
    }).catch(function () {
      form.submit();
    });
  });
})();

// Device page: while a command waits for the device's answer, the commands block
// (<div id="commands" data-poll="/console/devices/...">) is re-read from the page
// every few seconds until no command is pending, or for at most two minutes. Without
// script a reload shows the answer.
(function () {
  var timer = null;
  var polls = 0;
  function schedule() {
    if (timer !== null) {
      return;
    }
    var block = document.getElementById("commands");
    if (!block || !block.hasAttribute("data-poll") || polls >= 40) {
      return;
    }
    timer = window.setTimeout(function () {
      timer = null;
      polls += 1;
      var current = document.getElementById("commands");
      if (!current) {
        return;
      }
      fetch(current.getAttribute("data-poll"), {
        credentials: "same-origin",
        headers: { "Accept": "text/html" }
      }).then(function (r) {
        return r.ok ? r.text() : null;
      }).then(function (html) {
        if (html === null) {
          return;
        }
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("commands");
        var now = document.getElementById("commands");
        if (fresh && now) {
          now.replaceWith(fresh);
        }
        schedule();
      }).catch(function () {
        schedule();
      });
    }, 3000);
  }
  document.addEventListener("DOMContentLoaded", schedule);
  document.addEventListener("fixahead:replaced", function () {
    polls = 0;
    schedule();
  });
})();

// Queue and engineer's day (console/src/queue.rs, console/src/my_day.rs).
(function () {
  // Filter forms marked data-autosubmit apply a choice at once; the Apply button stays
  // for keyboards and for pages without this script.
  function go(form) {
    // The same GET as the form's, without the empty ("any") fields: a shorter URL to
    // bookmark.
    var params = new URLSearchParams();
    new FormData(form).forEach(function (value, name) {
      if (value !== "") { params.append(name, value); }
    });
    var query = params.toString();
    window.location.href = form.action.split("?")[0] + (query ? "?" + query : "");
  }
  document.addEventListener("change", function (e) {
    var form = e.target.form;
    if (form && form.matches("form[data-autosubmit]") && e.target.matches("select")) {
      go(form);
    }
  });
  document.addEventListener("submit", function (e) {
    var form = e.target;
    if (form.matches("form[data-autosubmit]") && !e.defaultPrevented) {
      e.preventDefault();
      go(form);
    }
  });

  // Live queue: the results carry data-live (the event stream's URL) when the person may
  // follow events. A ticket opened or changed re-reads this page's URL (its filters and
  // page) and swaps the results in, without a reload; new and changed rows flash.
  var results = document.getElementById("queue-results");
  var url = results && results.getAttribute("data-live");
  if (!url || !window.EventSource || !window.fetch || !window.DOMParser) {
    return;
  }
  var indicator = document.querySelector(".live-indicator");
  function show(on) {
    if (!indicator) { return; }
    indicator.hidden = false;
    indicator.textContent = indicator.getAttribute(on ? "data-on" : "data-off");
    indicator.classList.toggle("off", !on);
  }
  var timer = null, busy = false, again = false, touched = {};
  function refresh() {
    timer = null;
    if (busy) { again = true; return; }
    busy = true;
    var changed = touched;
    touched = {};
    fetch(window.location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) {
        if (!r.ok || r.redirected) { throw new Error("queue " + r.status); }
        return r.text();
      })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("queue-results");
        var current = document.getElementById("queue-results");
        if (!fresh || !current) { return; }
        var before = {};
        current.querySelectorAll("tr[data-id]").forEach(function (tr) {
          before[tr.getAttribute("data-id")] = tr.getAttribute("data-rev");
        });
        current.replaceWith(fresh);
        fresh.querySelectorAll("tr[data-id]").forEach(function (tr) {
          var id = tr.getAttribute("data-id");
          if (before[id] !== tr.getAttribute("data-rev") || changed[id]) {
            tr.classList.add("flash");
            window.setTimeout(function () { tr.classList.remove("flash"); }, 4000);
          }
        });
      })
      .catch(function () { /* the next event or a manual refresh tries again */ })
      .then(function () {
        busy = false;
        if (again) { again = false; schedule(); }
      });
  }
  function schedule() {
    if (!timer) { timer = window.setTimeout(refresh, 500); }
  }
  function onEvent(e) {
    try {
      var id = JSON.parse(e.data).ticket_id;
      if (id) { touched[String(id)] = true; }
    } catch (ignored) { /* the refresh still happens */ }
    schedule();
  }
  var source = new EventSource(url);
  source.onopen = function () { show(true); };
  source.onerror = function () { show(false); };
  ["ticket.opened", "ticket.updated", "ticket.sla_breached"].forEach(function (type) {
    source.addEventListener(type, onEvent);
  });
  window.addEventListener("pagehide", function () { source.close(); });
})();

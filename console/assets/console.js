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
      return r.text().then(function (html) { return { url: r.url, html: html }; });
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

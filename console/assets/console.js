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

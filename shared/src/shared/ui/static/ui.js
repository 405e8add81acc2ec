// The kit's only script: confirm dialogs and live search. Pages work without it.
"use strict";

(function () {
  // --- Confirm dialog: <form data-confirm="question" [data-confirm-detail="field name"]>.
  // Without this script the server answers the unconfirmed POST with a confirm page.
  function confirmWith(form, submitter) {
    var dialog = document.getElementById("confirm-dialog");
    var question = form.getAttribute("data-confirm");
    var confirm = function () {
      var flag = document.createElement("input");
      flag.type = "hidden";
      flag.name = "confirmed";
      flag.value = "1";
      form.appendChild(flag);
      form.dataset.confirmed = "1";
      HTMLFormElement.prototype.submit.call(form);
    };
    if (!dialog || typeof dialog.showModal !== "function") {
      if (window.confirm(question)) confirm();
      return;
    }
    dialog.querySelector("#confirm-dialog-text").textContent = question;
    var detail = dialog.querySelector("#confirm-dialog-detail");
    var detailField = form.getAttribute("data-confirm-detail");
    var detailValue = detailField && form.elements[detailField] ? form.elements[detailField].value : "";
    detail.textContent = detailValue;
    detail.hidden = !detailValue;
    var ok = dialog.querySelector("[data-dialog-ok]");
    var cancel = dialog.querySelector("[data-dialog-cancel]");
    ok.textContent = form.getAttribute("data-confirm-ok") || ok.textContent;
    ok.className = "btn " + (form.hasAttribute("data-danger") ? "btn-danger" : "btn-primary");
    var close = function (accepted) {
      ok.onclick = cancel.onclick = null;
      dialog.close();
      if (accepted) confirm();
      else if (submitter) submitter.focus();
    };
    ok.onclick = function () { close(true); };
    cancel.onclick = function () { close(false); };
    dialog.oncancel = function () { close(false); };
    dialog.showModal();
    cancel.focus();
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement) || !form.hasAttribute("data-confirm")) return;
    if (form.dataset.confirmed) return;
    event.preventDefault();
    confirmWith(form, event.submitter);
  });

  // --- Live search: <form data-live-search data-target="#id"> (a GET form).
  // The same URL with partial=1 answers just the results fragment.
  function liveSearch(form) {
    var target = document.querySelector(form.getAttribute("data-target"));
    if (!target) return;
    var timer = null;
    var inFlight = null;
    var run = function () {
      var params = new URLSearchParams();
      new FormData(form).forEach(function (value, key) {
        if (value !== "") params.append(key, value);
      });
      var pageUrl = form.action.split("?")[0] + (params.toString() ? "?" + params : "");
      params.append("partial", "1");
      if (inFlight) inFlight.abort();
      inFlight = new AbortController();
      target.setAttribute("aria-busy", "true");
      fetch(form.action.split("?")[0] + "?" + params, {
        credentials: "same-origin",
        headers: { "Accept": "text/html" },
        signal: inFlight.signal
      }).then(function (response) {
        if (response.redirected) { window.location.href = response.url; return null; }
        return response.text();
      }).then(function (html) {
        if (html === null) return;
        target.innerHTML = html;  // our own server-rendered, escaped fragment
        target.removeAttribute("aria-busy");
        window.history.replaceState(null, "", pageUrl);
      }).catch(function (error) {
        if (error.name !== "AbortError") target.removeAttribute("aria-busy");
      });
    };
    var later = function () {
      clearTimeout(timer);
      timer = setTimeout(run, 300);
    };
    form.addEventListener("input", function (event) {
      if (event.target.matches("input[type=search], input[type=text]")) later();
    });
    form.addEventListener("change", function (event) {
      if (!event.target.matches("input[type=search], input[type=text]")) run();
    });
  }

  document.querySelectorAll("form[data-live-search]").forEach(liveSearch);
})();

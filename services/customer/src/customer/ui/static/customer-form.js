// The customer form's script: unit cascades, rows, group defaults, uploads with progress.
// The form works without it (refresh and add-row buttons re-render it on the server).
"use strict";

(function () {
  var form = document.getElementById("customer-form");
  if (!form) return;
  document.querySelectorAll(".nojs").forEach(function (el) { el.hidden = true; });

  function fetchInto(select, url, keep) {
    return fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) { return r.ok ? r.text() : ""; })
      .then(function (html) {
        select.innerHTML = html;  // our own server-rendered, escaped <option>s
        if (keep) select.value = keep;
      });
  }

  // --- Province → district → ward: <div data-units> blocks (customer and each address).
  function unitsOf(block) {
    var q = function (level) { return block.querySelector("[data-unit-level=" + level + "]"); };
    return { scheme: block.querySelector("[data-unit-scheme]"), province: q("province"),
             district: q("district"), ward: q("ward"),
             districtBox: block.querySelector("[data-unit-district]"),
             equivalent: block.querySelector("[data-unit-equivalent]") };
  }
  function schemeOf(u) { return u.scheme && u.scheme.checked ? "legacy" : "2025"; }
  function params(values) { return new URLSearchParams(values).toString(); }
  function refreshEquivalent(u) {
    if (!u.equivalent) return;
    if (schemeOf(u) !== "legacy" || !u.province.value) { u.equivalent.innerHTML = ""; return; }
    fetch("/ui/units/equivalent?" + params({ province: u.province.value, ward: u.ward.value }),
          { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : ""; })
      .then(function (html) { u.equivalent.innerHTML = html; });
  }
  function loadWards(u) {
    var scheme = schemeOf(u);
    var query = { level: "ward", scheme: scheme, province: u.province.value,
                  district: scheme === "legacy" ? u.district.value : "" };
    return fetchInto(u.ward, "/ui/units/options?" + params(query)).then(function () { refreshEquivalent(u); });
  }
  function onUnitChange(event) {
    var block = event.target.closest("[data-units]");
    if (!block) return;
    var u = unitsOf(block);
    var level = event.target.getAttribute("data-unit-level");
    if (event.target === u.scheme) {
      var legacy = schemeOf(u) === "legacy";
      u.districtBox.hidden = !legacy;
      u.district.disabled = !legacy;
      u.district.innerHTML = "";
      u.ward.innerHTML = "";
      fetchInto(u.province, "/ui/units/options?" + params({ level: "province", scheme: schemeOf(u) }))
        .then(function () { refreshEquivalent(u); });
    } else if (level === "province") {
      // Clear what belonged to the former province first: the wards are read only once
      // the new district list is in (else the old district's wards would come back).
      u.ward.innerHTML = "";
      if (schemeOf(u) === "legacy") {
        u.district.innerHTML = "";
        fetchInto(u.district, "/ui/units/options?" + params({ level: "district", province: u.province.value }))
          .then(function () { loadWards(u); });
      } else {
        loadWards(u);
      }
    } else if (level === "district") {
      loadWards(u);
    } else if (level === "ward") {
      refreshEquivalent(u);
    }
  }
  form.addEventListener("change", onUnitChange);

  // --- A customer group fills its default payment term and credit days.
  form.addEventListener("change", function (event) {
    if (!event.target.matches("[data-group-select]")) return;
    var option = event.target.selectedOptions[0];
    if (!option) return;
    var term = form.elements["payment_term_code"];
    var days = form.elements["credit_days"];
    if (option.dataset.term && term) term.value = option.dataset.term;
    if (option.dataset.days && days) days.value = option.dataset.days;
  });

  // --- The unit follows the owner: choosing another owner goes back to "the owner's
  // unit" (empty), whose label names the new owner's unit; a unit can still be chosen.
  var ownerSelect = form.querySelector("[data-owner-select]");
  var unitSelect = form.querySelector("[data-unit-select]");
  if (ownerSelect && unitSelect) {
    ownerSelect.addEventListener("change", function () {
      var owner = ownerSelect.selectedOptions[0];
      var unitLabel = owner ? owner.getAttribute("data-unit-label") : "";
      var follow = unitSelect.querySelector("option[value='']");
      if (follow) follow.textContent = unitSelect.getAttribute("data-follow") + (unitLabel ? " — " + unitLabel : "");
      unitSelect.value = "";
    });
  }

  // --- The sticky action bar never hides the focused field: the page keeps its height
  // free at the bottom when it scrolls a field into view (scroll-padding-bottom).
  var bar = document.querySelector(".form-actions");
  if (bar) {
    var keepBarFree = function () {
      document.documentElement.style.setProperty("--form-actions-height", bar.offsetHeight + "px");
    };
    keepBarFree();
    if (window.ResizeObserver) new ResizeObserver(keepBarFree).observe(bar);
    else window.addEventListener("resize", keepBarFree);
  }

  // --- Rows: add from the <template>, remove in place. Numbers need not be contiguous:
  // the server reads the rows in order and renders them numbered again.
  document.querySelectorAll("[data-rows]").forEach(function (box) {
    var list = box.querySelector("[data-row-list]");
    var template = box.querySelector("[data-row-template]");
    var next = list.querySelectorAll("[data-row]").length;
    box.querySelector("[data-row-add]").addEventListener("click", function (event) {
      event.preventDefault();
      var holder = document.createElement("div");
      holder.innerHTML = template.innerHTML.split("__i__").join(String(next++));
      var row = holder.firstElementChild;
      list.appendChild(row);
      row.querySelectorAll("[data-row-remove]").forEach(function (b) { b.hidden = false; });
      row.querySelectorAll(".nojs").forEach(function (el) { el.hidden = true; });
      var first = row.querySelector("input:not([type=hidden]), select");
      if (first) first.focus();
    });
    list.addEventListener("click", function (event) {
      var button = event.target.closest("[data-row-remove]");
      if (!button) return;
      event.preventDefault();
      var row = button.closest("[data-row]");
      var focusTo = box.querySelector("[data-row-add]");
      row.remove();
      focusTo.focus();
    });
  });

  // --- Uploads: progress, image preview, the list replaced without a page load (so what
  // is typed in the form above is kept).
  var upload = document.querySelector("form[data-upload]");
  if (upload) {
    var preview = upload.querySelector("[data-upload-preview]");
    var progress = upload.querySelector("[data-upload-progress]");
    var error = upload.querySelector("[data-upload-error]");
    var fileInput = upload.querySelector("input[type=file]");
    fileInput.addEventListener("change", function () {
      var file = fileInput.files[0];
      preview.hidden = true;
      if (file && /^image\/(jpeg|png|webp)$/.test(file.type)) {
        preview.querySelector("img").src = URL.createObjectURL(file);
        preview.hidden = false;
      }
    });
    var maxBytes = parseInt(upload.getAttribute("data-max-bytes") || "0", 10);
    upload.addEventListener("submit", function (event) {
      event.preventDefault();
      if (!fileInput.files.length) { fileInput.focus(); return; }
      if (maxBytes && fileInput.files[0].size > maxBytes) {
        // Not sent at all: the server would refuse it after the whole upload.
        error.textContent = upload.getAttribute("data-too-big") || "";
        error.hidden = false;
        fileInput.focus();
        return;
      }
      var xhr = new XMLHttpRequest();
      xhr.open("POST", upload.action);
      xhr.setRequestHeader("Accept", "application/json");
      xhr.setRequestHeader("X-CSRF-Token", upload.elements["csrf_token"].value);
      error.hidden = true;
      progress.hidden = false;
      progress.value = 0;
      xhr.upload.onprogress = function (e) {
        if (e.lengthComputable) progress.value = Math.round(100 * e.loaded / e.total);
      };
      xhr.onload = function () {
        progress.hidden = true;
        var body = null;
        try { body = JSON.parse(xhr.responseText); } catch (e) { body = null; }
        if (xhr.status === 200 && body && body.ok) {
          document.getElementById("attachment-list").innerHTML = body.html;  // our escaped fragment
          upload.reset();
          preview.hidden = true;
          fileInput.focus();
        } else {
          error.textContent = (body && body.message) || upload.getAttribute("data-failed") || "";
          error.hidden = false;
        }
      };
      xhr.onerror = function () {
        progress.hidden = true;
        error.textContent = upload.getAttribute("data-failed") || "";
        error.hidden = false;
      };
      xhr.send(new FormData(upload));
    });
  }

  // --- Focus on the first problem (the server also marks it autofocus).
  var invalid = form.querySelector("[aria-invalid=true]");
  if (invalid) invalid.focus();
})();

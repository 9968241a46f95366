/* The postback editor, progressively enhanced: the page works without this file (its buttons
   post the form and the server re-renders it); with it, the preview follows the typing, a
   preset fills the template in place, "Send test" answers in place, and a click on a token
   inserts it. No build step, nothing fetched from the internet. */
(function () {
  "use strict";
  var form = document.getElementById("postback-form");
  if (!form) { return; }
  document.documentElement.classList.add("js");

  var template = document.getElementById("postback-url");
  var trigger = document.getElementById("postback-trigger");
  var headers = document.getElementById("postback-headers");
  var successBody = document.getElementById("postback-success-body");
  var retry4xx = form.querySelector("input[name=retry_4xx]");
  var testCode = document.getElementById("postback-test-code");
  var payoutType = form.querySelector("select[name=payout_type]");
  var preview = document.getElementById("postback-preview");
  var presetSelect = document.getElementById("postback-preset");
  var presetError = document.getElementById("preset-error");
  var testResult = document.getElementById("test-result");
  var csrfToken = form.querySelector("input[name=csrf_token]").value;

  /* POST a JSON body to one of the editor's routes; resolves to [status, answer object]. */
  function post(url, body) {
    return fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "Accept": "application/json", "X-CSRFToken": csrfToken},
      body: JSON.stringify(body)
    }).then(function (response) {
      return response.json().then(function (data) { return [response.status, data]; }, function () {
        return [response.status, {error: "The server answered " + response.status + ". Reload the page and try again."}];
      });
    }, function () {
      return [0, {error: "The server could not be reached. Check your connection and try again."}];
    });
  }

  function showError(box, message) {
    box.textContent = message || "";
    box.hidden = !message;
  }

  /* The preview: refreshed 300 ms after the typing stops; a slower, older answer never
     overwrites a newer one. */
  var timer = null, sent = 0;
  function refreshPreview() {
    var mine = ++sent;
    form.classList.add("previewing");
    post(form.dataset.previewUrl, {url: template.value, trigger: trigger.value, headers: headers.value}).then(function (result) {
      if (mine !== sent) { return; }
      form.classList.remove("previewing");
      var data = result[1];
      if (data.html !== undefined) {
        preview.innerHTML = data.html;
      } else {
        preview.innerHTML = "";
        var box = document.createElement("div");
        box.className = "banner error";
        box.id = "preview-error";
        box.textContent = data.error;
        preview.appendChild(box);
      }
    });
  }
  function schedulePreview() {
    clearTimeout(timer);
    timer = setTimeout(refreshPreview, 300);
  }
  /* The template grows with its text, up to about 24 lines. */
  function fitTemplate() {
    template.style.height = "auto";
    template.style.height = Math.min(template.scrollHeight + 2, 480) + "px";
  }
  template.addEventListener("input", function () { fitTemplate(); schedulePreview(); });
  headers.addEventListener("input", schedulePreview);
  fitTemplate();
  trigger.addEventListener("change", function () { refreshPreview(); markTokens(); });

  /* Presets: show only the chosen preset's inputs; "Use this preset" fills the template in place. */
  var presetInputs = form.querySelectorAll("[data-presets]");
  function showPresetInputs() {
    var chosen = presetSelect.value;
    presetInputs.forEach(function (label) {
      label.hidden = !chosen || label.dataset.presets.split(" ").indexOf(chosen) < 0;
    });
  }
  presetSelect.addEventListener("change", function () { showPresetInputs(); showError(presetError, ""); });
  showPresetInputs();

  document.getElementById("preset-apply").addEventListener("click", function (event) {
    event.preventDefault();
    var fields = {};
    presetInputs.forEach(function (label) {
      var input = label.querySelector("input");
      if (!label.hidden && input.value.trim()) { fields[input.name.slice("preset-".length)] = input.value; }
    });
    post(form.dataset.presetUrl, {preset: presetSelect.value, fields: fields}).then(function (result) {
      var data = result[1];
      if (result[0] !== 200) { showError(presetError, "Preset not applied: " + data.error); return; }
      showError(presetError, "");
      template.value = data.url;
      trigger.value = data.trigger;
      /* A preset replaces the request options and filters; what it does not name is reset. */
      headers.value = data.headers_text || "";
      successBody.value = data.success_body || "";
      retry4xx.checked = !!data.retry_4xx;
      testCode.value = data.test_event_code || "";
      payoutType.value = data.payout_type || "all";
      form.querySelectorAll("input[name=statuses]").forEach(function (box) {
        box.checked = (data.statuses || []).indexOf(box.value) >= 0;
      });
      if (headers.value || successBody.value || retry4xx.checked || testCode.value) {
        document.getElementById("request-options").open = true;
      }
      fitTemplate();
      markTokens();
      refreshPreview();
      template.focus();
    });
  });

  /* Send test: queue it and show the link to its delivery page. */
  document.getElementById("send-test").addEventListener("click", function (event) {
    event.preventDefault();
    var button = event.currentTarget;
    button.disabled = true;
    post(form.dataset.testUrl, {
      url: template.value, headers: headers.value, success_body: successBody.value,
      retry_4xx: retry4xx.checked, test_event_code: testCode.value
    }).then(function (result) {
      button.disabled = false;
      var data = result[1];
      if (data.html !== undefined) {
        testResult.innerHTML = data.html;
      } else {
        testResult.innerHTML = "";
        var box = document.createElement("div");
        box.className = "banner error";
        box.textContent = "Test not sent: " + data.error;
        testResult.appendChild(box);
      }
    });
  });

  /* The token reference: a click inserts the token at the cursor; tokens the chosen trigger
     can't fill are dimmed; the search box narrows the list. */
  var reference = document.getElementById("token-reference");
  reference.addEventListener("click", function (event) {
    var code = event.target.closest("[data-token]");
    if (!code) { return; }
    var text = code.dataset.token, start = template.selectionStart, end = template.selectionEnd;
    template.setRangeText(text, start, end, "end");
    template.focus();
    fitTemplate();
    schedulePreview();
  });
  function markTokens() {
    reference.querySelectorAll("tr[data-triggers]").forEach(function (row) {
      row.classList.toggle("unavailable", row.dataset.triggers.split(" ").indexOf(trigger.value) < 0);
    });
  }
  markTokens();
  document.getElementById("token-search").addEventListener("input", function (event) {
    var needle = event.target.value.trim().toLowerCase();
    reference.querySelectorAll("tr[data-triggers]").forEach(function (row) {
      row.hidden = needle !== "" && row.textContent.toLowerCase().indexOf(needle) < 0;
    });
  });
})();

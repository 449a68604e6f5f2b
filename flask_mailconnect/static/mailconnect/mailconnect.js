/* Flask-MailConnect: progressive enhancement of the pages. Everything works without it.
   - connect form: fill server settings from provider presets, or ask the server to look them
     up ("Looking up servers for example.org..."; only the address is sent), offer a
     provider's "Connect with ..." button instead of the password form, reveal the details step,
     "Test connection" through fetch (CSRF header), Save enabled only after a passing test;
   - signature: a small rich-text editor kept in sync with the plain textarea;
   - admin provider form: only the chosen authentication's fields. */
(function () {
  "use strict";

  var SERVER_FIELDS = ["smtp_host", "smtp_port", "smtp_security", "imap_host", "imap_port",
    "imap_security"];
  // Servers for "Other": the same defaults the server's Continue step uses.
  var FALLBACK = {smtp: {host: "", port: 587, security: "starttls"},
    imap: {host: "", port: 993, security: "ssl"}};

  function each(list, fn) { Array.prototype.forEach.call(list, fn); }

  // The page's words for this script (mailconnect/_js_strings.html renders them translated);
  // the English here is only the fallback for a page that does not include them.
  var strings = null;
  function t(key, english, values) {
    if (strings === null) {
      var node = document.getElementById("mc-strings");
      try { strings = node ? JSON.parse(node.textContent) : {}; } catch (e) { strings = {}; }
    }
    return (strings[key] || english).replace(/%\((\w+)\)s/g, function (whole, name) {
      return values && Object.prototype.hasOwnProperty.call(values, name) ? values[name] : whole;
    });
  }

  function looksLikeEmail(value) { return /^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(value); }

  function initConnect(form) {
    var presetsNode = document.getElementById("mc-presets");
    var presets = presetsNode ? JSON.parse(presetsNode.textContent) : {};
    var el = form.elements;
    var edited = {};
    var lastPassed = null;
    var testBtn = form.querySelector("[data-mc-test]");
    var saveBtn = form.querySelector("[data-mc-save]");
    var saveHint = form.querySelector("[data-mc-save-hint]");
    var spinner = form.querySelector("[data-mc-spinner]");
    var resultBox = form.querySelector("[data-mc-result]");
    var reconnecting = el.email.readOnly;
    // Address -> the server's detection answer (/detect). By address, not domain: the login in
    // an answer was filled in for that address (and may be that person's alone).
    var remote = {};
    var status = form.querySelector("[data-mc-detect]");
    var usePassword = false;  // "Use a password instead" was pressed
    var asked = null;  // the address whose look-up is running
    var seeded = document.getElementById("mc-detection");
    if (seeded) {
      var first = JSON.parse(seeded.textContent);
      remote[keyOf(first.email)] = first;
    }

    function domainOf(email) { return email.split("@").pop().toLowerCase().replace(/\.$/, ""); }

    // The address as the server writes it back: the local part as typed, the domain lower-case.
    function keyOf(email) { return email.slice(0, email.lastIndexOf("@")) + "@" + domainOf(email); }

    function known(email) {
      var domain = domainOf(email);
      for (var key in presets) {
        if (presets[key].domains.indexOf(domain) !== -1) { return key; }
      }
      return null;
    }

    function detect(email) {
      var hit = remote[keyOf(email)];
      return known(email) || (hit && presets[hit.provider] ? hit.provider : "other");
    }

    function setStatus(text, busy) {
      if (!status) { return; }
      status.hidden = !text;
      status.querySelector("[data-mc-detect-text]").textContent = text || "";
      status.querySelector("[data-mc-detect-busy]").hidden = !busy;
    }

    // The provider's "Connect with ..." button in place of the password form, or none.
    function offer(providerKey, email) {
      var shown = null;
      each(form.querySelectorAll("[data-mc-oauth-offer]"), function (panel) {
        var on = !reconnecting && panel.getAttribute("data-mc-oauth-offer") === providerKey &&
          presets[providerKey] && presets[providerKey].oauth;
        panel.hidden = !on;
        if (on) { shown = panel; }
      });
      if (shown) {
        shown.querySelector("[data-mc-offer-domain]").textContent = domainOf(email);
        shown.querySelector("[data-mc-use-password]").hidden = false;
        var hint = document.querySelector("#mc-oauth-" + providerKey + " [data-mc-login-hint]");
        if (hint) { hint.value = email; }
      }
      var oauthOnly = Boolean(shown) && !usePassword;
      form.classList.toggle("mc-connect--oauth", oauthOnly);
      each(form.querySelectorAll("[data-mc-password-part]"), function (node) {
        node.hidden = oauthOnly;
      });
    }

    function loginFor(preset, email) {
      if (preset.login_format === "local_part") { return email.split("@")[0]; }
      if (preset.login_format === "manual") { return ""; }
      return email;
    }

    function expected(providerKey, email) {
      var preset = presets[providerKey] || presets.other;
      var values = {provider: providerKey, username: loginFor(preset, email)};
      // Servers the look-up found, for the provider it found (or "Other").
      var hit = remote[keyOf(email)];
      var found = hit && (hit.provider === providerKey) && !known(email) ? hit : null;
      if (found && found.username) { values.username = found.username; }
      ["smtp", "imap"].forEach(function (proto) {
        var server = (found && found[proto]) || preset[proto] || FALLBACK[proto];
        values[proto + "_host"] = server.host;
        values[proto + "_port"] = String(server.port);
        values[proto + "_security"] = server.security;
      });
      return values;
    }

    // Fill from presets, leaving alone every field the user changed by hand.
    function fill() {
      var email = el.email.value.trim();
      if (!edited.provider) { el.provider.value = detect(email); }
      var values = expected(el.provider.value, email);
      ["username"].concat(SERVER_FIELDS).forEach(function (name) {
        if (!edited[name] && el[name]) { el[name].value = values[name]; }
      });
      update();
    }

    function showDetails() {
      each(form.querySelectorAll("[data-mc-details]"), function (node) { node.hidden = false; });
      var cont = form.querySelector("[data-mc-continue]");
      // Removed, not hidden: a hidden Continue would stay the form's default (Enter) button.
      if (cont) { cont.parentNode.removeChild(cont); }
    }

    function fingerprint() {
      var parts = [];
      each(form.elements, function (field) {
        if (!field.name || field.name === "csrf_token" || field.type === "submit") { return; }
        if ((field.type === "checkbox" || field.type === "radio") && !field.checked) { return; }
        parts.push(field.name + "=" + field.value);
      });
      return parts.join("\u0000");
    }

    function update() {
      var imap = form.querySelector("[data-mc-imap]");
      if (imap) { imap.hidden = !el.receives.checked; }
      var ready = el.username.value.trim() !== "" && el.password.value !== "";
      testBtn.hidden = !ready;
      var passed = lastPassed !== null && lastPassed === fingerprint();
      saveBtn.disabled = !passed;
      saveHint.hidden = passed;
      saveHint.textContent = lastPassed === null
        ? t("save_hint_first", "Test the connection to enable saving.")
        : t("save_hint_stale",
          "The settings changed since the last test: test again to enable saving.");
      var result = resultBox.querySelector(".mc-result");
      if (result) { result.classList.toggle("mc-result--stale", lastPassed !== null && !passed); }
    }

    // Every field's message, or only ``name``'s.
    function clearErrors(name) {
      var selector = name ? '[data-error-for="' + name + '"]' : "[data-error-for]";
      each(form.querySelectorAll(selector), function (node) {
        node.hidden = true;
        node.textContent = "";
        var wrap = node.closest(".mc-field");
        if (wrap) { wrap.classList.remove("mc-field--error"); }
        var input = form.elements[node.getAttribute("data-error-for")];
        if (input && input.setAttribute) { input.setAttribute("aria-invalid", "false"); }
      });
    }

    function showErrors(errors) {
      Object.keys(errors).forEach(function (name) {
        var node = form.querySelector('[data-error-for="' + name + '"]');
        if (!node) { node = form.querySelector('[data-error-for="email"]'); }
        node.textContent = errors[name];
        node.hidden = false;
        var wrap = node.closest(".mc-field");
        if (wrap) { wrap.classList.add("mc-field--error"); }
        var input = form.elements[name];
        if (input && input.setAttribute) { input.setAttribute("aria-invalid", "true"); }
      });
    }

    function runTest() {
      var sent = fingerprint();
      clearErrors();
      resultBox.innerHTML = "";
      spinner.hidden = false;
      testBtn.disabled = true;
      var token = el.csrf_token ? el.csrf_token.value : "";
      fetch(form.getAttribute("data-test-url"), {
        method: "POST",
        body: new FormData(form),
        credentials: "same-origin",
        headers: {"X-CSRFToken": token, "Accept": "application/json"}
      }).then(function (response) {
        return response.json();
      }).then(function (data) {
        if (data.error === "csrf") {
          // views/common.py answers 400 {"ok": false, "error": "csrf"} for a missing or
          // expired token: only a fresh page (and token) helps.
          var expired = document.createElement("p");
          expired.className = "mc-alert mc-alert--error";
          expired.setAttribute("role", "alert");
          expired.textContent = t("session_expired",
            "Your session expired. Reload the page and try again.");
          resultBox.appendChild(expired);
        } else if (data.error === "rate_limited") {
          var alert = document.createElement("p");
          alert.className = "mc-alert mc-alert--error";
          alert.setAttribute("role", "alert");
          alert.textContent = data.message;
          resultBox.appendChild(alert);
        } else if (data.errors) {
          showErrors(data.errors);
          // Announced through the live region: the messages sit next to their fields.
          var note = document.createElement("p");
          note.className = "mc-alert mc-alert--error";
          note.textContent = t("fields_need_change",
            "Some fields need a change: see the messages next to them.");
          resultBox.appendChild(note);
        } else if (data.html) {
          resultBox.innerHTML = data.html;  // rendered by our own template, escaped there
        } else {
          throw new Error(data.message || "unexpected answer");
        }
        lastPassed = data.ok ? sent : null;
      }).catch(function () {
        var failed = document.createElement("p");
        failed.className = "mc-alert mc-alert--error";
        failed.textContent = t("test_not_run",
          "The test could not be run. Check your connection to this site and try again.");
        resultBox.innerHTML = "";
        resultBox.appendChild(failed);
        lastPassed = null;
      }).then(function () {
        spinner.hidden = true;
        testBtn.disabled = false;
        update();
      });
    }

    // Domains no preset knows: the server looks them up (ISP database, the domain's own
    // files, DNS). Only the address goes with the request, never the password.
    function detectRemote(email) {
      var url = form.getAttribute("data-detect-url");
      var key = known(email);
      if (asked === email) { return; }  // already asking (change, then Continue)
      asked = null;
      if (key) {
        // A provider with a sign-in button needs no words above it.
        setStatus(presets[key].oauth ? "" : t("settings_filled", "Settings for %(name)s filled in.",
          {name: presets[key].name || key}), false);
        offer(key, email);
        return;
      }
      var hit = remote[keyOf(email)];
      if (hit) {
        setStatus(hit.message, false);
        offer(hit.provider, email);
        return;
      }
      if (!url) { return; }
      asked = email;
      offer(null, email);
      setStatus(t("looking_up", "Looking up servers for %(domain)s\u2026",
        {domain: domainOf(email)}), true);
      fetch(url + "?email=" + encodeURIComponent(email), {
        credentials: "same-origin", headers: {"Accept": "application/json"}
      }).then(function (response) {
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.json();
      }).then(function (data) {
        if (asked !== email) { return; }  // the address changed meanwhile
        asked = null;
        // "Busy" or "too many look-ups" is asked again the next time, not remembered.
        if (!data.not_asked) { remote[keyOf(email)] = data; }
        if (!edited.provider) { fill(); }
        setStatus(data.message, false);
        offer(data.provider, email);
      }).catch(function () {
        // Detection is a convenience: typing the servers still works.
        if (asked === email) {
          asked = null;
          setStatus(t("lookup_failed",
            "Servers for %(domain)s could not be looked up: enter them below.",
            {domain: domainOf(email)}), false);
        }
      });
    }

    each(form.querySelectorAll("[data-mc-use-password]"), function (button) {
      button.addEventListener("click", function () {
        usePassword = true;
        offer(null, el.email.value.trim());
        (el.username.value ? el.password : el.username).focus();
      });
    });

    form.addEventListener("input", function (event) {
      if (event.target.name && event.target.name !== "email") { edited[event.target.name] = true; }
      update();
    });
    form.addEventListener("change", function (event) {
      var name = event.target.name;
      if (name === "provider") {
        edited.provider = true;
        // A provider picked by hand brings its servers: forget edits of the server fields.
        SERVER_FIELDS.concat(["username"]).forEach(function (n) { edited[n] = false; });
        fill();
      } else if (name === "email" && !reconnecting && looksLikeEmail(el.email.value.trim())) {
        clearErrors("email");
        usePassword = false;
        fill();
        showDetails();
        detectRemote(el.email.value.trim());
      }
      update();
    });
    form.addEventListener("submit", function (event) {
      var submitter = event.submitter;
      if (submitter && submitter.name === "continue_") {
        event.preventDefault();
        if (looksLikeEmail(el.email.value.trim())) {
          clearErrors("email");  // a mistyped address's message must not outlive the fix
          fill();
          showDetails();
          detectRemote(el.email.value.trim());
          (el.username.value ? el.password : el.username).focus();
        } else {
          showErrors({email: t("enter_email", "Enter an email address such as name@example.com.")});
        }
        return;
      }
      if (submitter === saveBtn && !saveBtn.disabled) { return; }
      event.preventDefault();
      if (!testBtn.hidden) { runTest(); }
    });

    // Values the server rendered that differ from the preset were typed by the user.
    if (form.getAttribute("data-step") !== "address") {
      var values = expected(el.provider.value, el.email.value.trim());
      ["username"].concat(SERVER_FIELDS).forEach(function (name) {
        if (el[name] && el[name].value !== values[name]) { edited[name] = true; }
      });
      edited.provider = reconnecting || el.provider.value !== detect(el.email.value.trim());
      if (seeded && !reconnecting) { offer(el.provider.value, el.email.value.trim()); }
    }
    update();
  }

  function initSignature(block) {
    var wrap = block.querySelector("[data-mc-editor-wrap]");
    var editor = block.querySelector("[data-mc-editor]");
    var source = block.querySelector("[data-mc-signature-source]");
    if (!wrap || !editor || !source || typeof document.execCommand !== "function") { return; }
    wrap.hidden = false;
    source.hidden = true;

    function sync() { source.value = editor.innerHTML; }

    each(block.querySelectorAll("[data-mc-cmd]"), function (button) {
      // Keep the selection in the editor when a toolbar button is pressed.
      button.addEventListener("mousedown", function (event) { event.preventDefault(); });
      button.addEventListener("click", function () {
        var cmd = button.getAttribute("data-mc-cmd");
        editor.focus();
        if (cmd === "link") {
          var url = window.prompt(t("link_address", "Link address"), "https://");
          if (!url || url === "https://") { return; }
          if (!/^(https?:|mailto:|tel:)/i.test(url)) {
            url = (url.indexOf("@") > 0 ? "mailto:" : "https://") + url;
          }
          document.execCommand("createLink", false, url);
        } else {
          document.execCommand(cmd, false, null);
        }
        sync();
      });
    });
    editor.addEventListener("input", sync);
    block.closest("form").addEventListener("submit", sync);
  }

  // Admin provider form: only the chosen authentication's fields.
  function initProviderForm(form) {
    var choice = form.querySelector("[data-mc-auth-method]");
    var oauth = form.querySelector("[data-mc-oauth-fields]");
    if (!choice || !oauth) { return; }
    function show() { oauth.hidden = choice.value !== "oauth2"; }
    choice.addEventListener("change", show);
    show();
  }

  function init() {
    each(document.querySelectorAll(".mailconnect form[data-mc-connect]"), initConnect);
    each(document.querySelectorAll(".mailconnect form[data-mc-provider-form]"), initProviderForm);
    each(document.querySelectorAll(".mailconnect [data-mc-signature]"), initSignature);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();

// Renders a member page from the JSON endpoints, like Sportlink's single-page app: the HTML has
// no sections; they appear only after the data has arrived (plus the configured render delay).
(function () {
  "use strict";

  var config = JSON.parse(document.getElementById("sim-config").textContent);
  var main = document.getElementById("member-sections");
  var MONTHS = ["jan", "feb", "mrt", "apr", "mei", "jun", "jul", "aug", "sep", "okt", "nov", "dec"];
  var SERVER_ERROR = "Er is een fout opgetreden";
  var COUNTRIES = [["NL", "Nederland"], ["BE", "België"], ["DE", "Duitsland"], ["FR", "Frankrijk"],
    ["GB", "Verenigd Koninkrijk"], ["ES", "Spanje"], ["PL", "Polen"], ["TR", "Turkije"],
    ["MA", "Marokko"], ["SR", "Suriname"]];

  function field(key, label, kind, oldName) {
    return { key: key, label: label, kind: kind || "text", oldName: oldName || null };
  }

  function freeFieldList() {
    var list = [];
    for (var n = 1; n <= 10; n++) {
      list.push(field("Remarks" + n, "Vrij veld " + n, n === 8 ? "date" : "text", "inputRemarks" + n));
    }
    return list;
  }

  function homeAddress(data) {
    var list = (data && data.Addresses) || [];
    return list.find(function (a) { return a.AddressType === "Home"; }) || list[0] || {};
  }

  function flattenFreeFields(data) {
    var values = {};
    var fields = (data && data.FreeFields) || {};
    Object.keys(fields).forEach(function (key) { values[key] = (fields[key] || {}).Value; });
    return values;
  }

  function wrapFreeFields(values) {
    var fields = {};
    Object.keys(values).forEach(function (key) { fields[key] = { Value: values[key] }; });
    return { FreeFields: fields };
  }

  function identity(x) { return x || {}; }

  // Section definitions: where the data comes from, how it maps to inputs, how it is posted.
  var SECTIONS = {
    "Persoonlijke gegevens": {
      fromHeader: true,
      fromData: function (h) { return { FullName: h.FullName, PersonId: h.PersonId }; },
      fields: [field("FullName", "Naam"), field("PersonId", "Relatiecode")],
      saveable: false
    },
    "Communicatie": {
      endpoint: "/member/persondata/MemberCommunication",
      fromData: identity,
      toBody: identity,
      fields: [field("Email1", "E-mail", "text", "Email"), field("Email2", "E-mail 2"),
        field("Mobile1", "Mobiel", "phone", "Mobile"), field("Mobile2", "Mobiel 2", "phone"),
        field("Telephone1", "Telefoon", "phone", "Phone"), field("Telephone2", "Telefoon 2", "phone")],
      saveable: true
    },
    "Adres": {
      endpoint: "/member/persondata/MemberAddresses",
      fromData: homeAddress,
      toBody: function (v) { return { Addresses: [Object.assign({ AddressType: "Home" }, v)] }; },
      fields: [field("StreetName", "Straat"), field("AddressNumber", "Huisnummer"),
        field("AddressNumberAppendix", "Toevoeging"), field("ZipCode", "Postcode"),
        field("City", "Plaats"), field("CountryCode", "Land", "country")],
      saveable: true
    },
    "Ouders/verzorgers": { fields: [field("Parents", "Ouders/verzorgers")], saveable: false },
    "Nationaliteit": { fields: [field("Nationality", "Nationaliteit")], saveable: false },
    "Vrije invoervelden": {
      endpoint: "/remarks/MemberFreeFields",
      fromData: flattenFreeFields,
      toBody: wrapFreeFields,
      fields: freeFieldList(),
      saveable: true
    },
    "Vrije invoervelden bij aanmelding": { fields: [field("Registration", "Opmerking")], saveable: false },
    "Notities": { fields: [field("Notes", "Notitie")], saveable: false },
    "Financiële gegevens": {
      endpoint: "/member/MemberHeader",
      fromHeader: true,
      fromData: function (h) {
        return { HasFinancialTransferBlockOwnClub: !!h.HasFinancialTransferBlockOwnClub };
      },
      toBody: identity,
      fields: [field("HasFinancialTransferBlockOwnClub", "Financiële blokkade eigen club", "checkbox")],
      saveable: true
    }
  };

  function SessionExpired() {}

  // Every call sends the session cookie; a 401 means the app navigates to the login page.
  async function api(path, options) {
    var url = path + "?PersonId=" + encodeURIComponent(config.personId);
    var response = await fetch(url, Object.assign({ credentials: "include" }, options || {}));
    var body = null;
    try { body = await response.json(); } catch (e) { body = null; }
    if (response.status === 401) {
      window.location.href = (body && body.redirect) || "/";
      throw new SessionExpired();
    }
    return { status: response.status, body: body };
  }

  function wait(ms) {
    return new Promise(function (resolve) { setTimeout(resolve, ms); });
  }

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) { node.setAttribute(name, attrs[name]); });
    if (text !== undefined && text !== null) { node.textContent = text; }
    return node;
  }

  function localPhone(value) {
    var compact = String(value || "").replace(/[\s-]/g, "");
    if (/^\+31\d{9}$/.test(compact)) { return "0" + compact.slice(3); }
    if (/^0031\d{9}$/.test(compact)) { return "0" + compact.slice(4); }
    return String(value || "");
  }

  function isoParts(value) {
    var m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(value || "");
    if (!m || Number(m[2]) < 1 || Number(m[2]) > 12) { return null; }
    return { year: m[1], month: m[2], day: m[3] };
  }

  function displayDate(value) {
    var d = isoParts(value);
    if (!d) { return String(value || ""); }
    if (config.dateDisplay === "numeric") { return d.day + "-" + d.month + "-" + d.year; }
    var index = Number(d.month) - 1;
    // Dutch locale abbreviations end in a dot, except "mei" (the full name is that short).
    var dot = config.dateDisplay === "dutch-dot" && MONTHS[index] !== "mei" ? "." : "";
    return Number(d.day) + " " + MONTHS[index] + dot + " " + d.year;
  }

  function editDate(value) {
    var d = isoParts(value);
    return d ? d.day + "-" + d.month + "-" + d.year : String(value || "");
  }

  function countryName(code) {
    var match = COUNTRIES.find(function (c) { return c[0] === code; });
    return match ? match[1] : String(code || "");
  }

  function displayValue(f, value) {
    switch (f.kind) {
      case "phone": return localPhone(value);
      case "date": return displayDate(value);
      case "checkbox": return value ? "Ja" : "Nee";
      case "country": return countryName(value);
      default: return value === undefined || value === null ? "" : String(value);
    }
  }

  function inputName(f) {
    return config.oldInputNames && f.oldName ? f.oldName : f.key;
  }

  function makeInput(f, value, disabled) {
    var input;
    if (f.kind === "checkbox") {
      input = el("input", { type: "checkbox", name: inputName(f) });
      input.checked = !!value;
    } else if (f.kind === "country") {
      input = el("select", { name: inputName(f) });
      var options = COUNTRIES.slice();
      if (value && !options.some(function (c) { return c[0] === value; })) { options.push([value, value]); }
      if (!value) { input.appendChild(el("option", { value: "" }, "")); }
      options.forEach(function (c) { input.appendChild(el("option", { value: c[0] }, c[1])); });
      input.value = value || "";
    } else {
      input = el("input", { type: "text", name: inputName(f) });
      input.value = f.kind === "phone" ? localPhone(value) : f.kind === "date" ? editDate(value) : (value || "");
    }
    input.disabled = !!disabled;
    return input;
  }

  function body(section) {
    var node = section.querySelector(".section-body");
    node.replaceChildren();
    return node;
  }

  function showReadOnly(section, def, values, editable) {
    var container = body(section);
    var list = el("dl");
    def.fields.forEach(function (f) {
      list.appendChild(el("dt", {}, f.label));
      list.appendChild(el("dd", { "data-field": f.key }, displayValue(f, values[f.key])));
    });
    container.appendChild(list);
    if (editable) {
      var edit = el("button", { type: "button" }, "Wijzig");
      edit.addEventListener("click", function () { showEdit(section, def, values, editable); });
      container.appendChild(edit);
    }
  }

  function showEdit(section, def, values, editable) {
    var container = body(section);
    var form = el("form", { novalidate: "novalidate" });
    def.fields.forEach(function (f) {
      var label = el("label");
      label.appendChild(el("span", {}, f.label + " "));
      label.appendChild(makeInput(f, values[f.key], !def.saveable));
      form.appendChild(label);
    });
    if (def.saveable) {
      form.appendChild(el("button", { type: "submit" }, "Sla op"));
    } else {
      form.appendChild(el("p", { "class": "note" }, "Deze gegevens kunnen in de simulator niet worden gewijzigd."));
    }
    var cancel = el("button", { type: "button" }, "Annuleer");
    cancel.addEventListener("click", function () { showReadOnly(section, def, values, editable); });
    form.appendChild(cancel);
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      if (def.saveable) { save(section, def, values, editable, form); }
    });
    container.appendChild(form);
  }

  function showError(section, form, message) {
    var box = section.querySelector(".validation-error");
    if (!box) {
      box = el("div", { "class": "validation-error", role: "alert" });
      form.insertBefore(box, form.firstChild);
    }
    box.textContent = message;
  }

  function setBusy(form, busy) {
    form.querySelectorAll("button").forEach(function (b) { b.disabled = busy; });
  }

  async function save(section, def, values, editable, form) {
    var posted = {};
    def.fields.forEach(function (f) {
      var input = form.querySelector('[name="' + inputName(f) + '"]');
      if (input) { posted[f.key] = f.kind === "checkbox" ? input.checked : input.value; }
    });
    setBusy(form, true);
    var result;
    try {
      result = await api(def.endpoint, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(def.toBody(posted))
      });
    } catch (e) {
      if (e instanceof SessionExpired) { return; }
      setBusy(form, false);
      showError(section, form, SERVER_ERROR);
      return;
    }
    if (result.status === 200) {
      var stored = def.fromData(result.body);
      await wait(config.renderDelayMs);
      showReadOnly(section, def, stored, editable);
      return;
    }
    setBusy(form, false);
    var message = result.status >= 500 || !result.body || !result.body.message
      ? SERVER_ERROR : result.body.message;
    showError(section, form, message);
  }

  function renderSection(title, values, editable) {
    var section = el("section", { "data-section": title });
    section.appendChild(el("h2", {}, title));
    section.appendChild(el("div", { "class": "section-body" }));
    showReadOnly(section, SECTIONS[title], values, editable);
    return section;
  }

  function pageError(text) {
    main.replaceChildren(el("p", { "class": "page-error" }, text));
    main.setAttribute("aria-busy", "false");
  }

  async function sectionData(title, header) {
    var def = SECTIONS[title];
    if (def.fromHeader) { return def.fromData(header); }
    if (!def.endpoint) { return {}; }
    var result = await api(def.endpoint);
    return result.status === 200 ? def.fromData(result.body) : null;
  }

  async function load() {
    var head = await api("/member/MemberHeader");
    if (head.status !== 200 || !head.body) {
      pageError((head.body && head.body.message) || SERVER_ERROR);
      return;
    }
    var header = head.body;
    document.getElementById("member-name").textContent = header.FullName || "";
    document.getElementById("member-status").textContent = header.MemberStatus || "";
    var editable = header.MemberStatus !== config.formerMemberStatus;
    var present = header.Sections || [];
    var titles = config.sections.filter(function (t) { return present.indexOf(t) >= 0; });
    var data = await Promise.all(titles.map(function (t) { return sectionData(t, header); }));
    await wait(config.renderDelayMs);
    titles.forEach(function (title, i) {
      if (data[i] !== null) { main.appendChild(renderSection(title, data[i], editable)); }
    });
    main.setAttribute("aria-busy", "false");
  }

  function wireHeaderButtons() {
    var dialog = document.getElementById("header-dialog");
    document.querySelectorAll(".header-action").forEach(function (button) {
      button.addEventListener("click", function () { dialog.hidden = false; });
    });
    document.getElementById("header-dialog-close").addEventListener("click", function () {
      dialog.hidden = true;
    });
  }

  wireHeaderButtons();
  load().catch(function (e) {
    if (!(e instanceof SessionExpired)) { pageError(SERVER_ERROR); }
  });
})();

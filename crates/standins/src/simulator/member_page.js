// Renders a member page from the JSON endpoints, like Sportlink's single-page app: the HTML has
// no sections; they appear only after the data has arrived (plus the configured delays).
// The shell calls this function with the page's configuration. Every incidental detail (the
// URL format of the data requests, JSON wrappers, markup, texts, order, timing) comes from
// `config.v`, the variant in use (src/simulator/variant.rs).
(function (config) {
  "use strict";

  var v = config.v;
  var ids = config.ids;
  var main = document.getElementById(ids.main);

  var MONTHS = ["jan", "feb", "mrt", "apr", "mei", "jun", "jul", "aug", "sep", "okt", "nov", "dec"];
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
        return { HasFinancialTransferBlockOwnClub: flagValue(h.HasFinancialTransferBlockOwnClub) };
      },
      toBody: function (v) {
        return { HasFinancialTransferBlockOwnClub: encodeFlag(v.HasFinancialTransferBlockOwnClub) };
      },
      fields: [field("HasFinancialTransferBlockOwnClub", "Financiële blokkade eigen club", "checkbox")],
      saveable: true
    }
  };

  function SessionExpired() {}

  function flagValue(x) { return x === true || x === 1 || x === "true" || x === "1"; }

  function encodeFlag(b) {
    if (v.flag === "text") { return b ? "true" : "false"; }
    if (v.flag === "number") { return b ? 1 : 0; }
    return !!b;
  }

  function dataUrl(path) {
    var id = encodeURIComponent(config.personId);
    return v.prefix + path + (v.idInPath ? "/" + id : "?" + v.idParam + "=" + id);
  }

  // Every call sends the session cookie and the app's own header; a 401 means the app
  // navigates to the login page.
  async function api(path, options) {
    options = options || {};
    var headers = Object.assign({}, options.headers || {});
    headers[v.header[0]] = v.header[1];
    var response = await fetch(dataUrl(path),
      Object.assign({ credentials: "include" }, options, { headers: headers }));
    var text = await response.text();
    var body = null;
    if (text) { try { body = JSON.parse(text); } catch (e) { body = null; } }
    if (response.status === 401) {
      window.location.href = (body && body.redirect) || "/";
      throw new SessionExpired();
    }
    return { status: response.status, body: body };
  }

  function unwrap(body) {
    if (body && v.wrapper && typeof body[v.wrapper] === "object") { return body[v.wrapper]; }
    return body;
  }

  function errorMessage(body) {
    return body && typeof body[v.errorKey] === "string" && body[v.errorKey] ? body[v.errorKey] : null;
  }

  function wait(ms) {
    return new Promise(function (resolve) { setTimeout(resolve, ms); });
  }

  function suffix() { return Math.random().toString(36).slice(2, 9); }
  function rid() { return "x" + suffix(); }
  function rc() { return "c-" + suffix(); }

  // A fixed class, plus a random one when the variant randomises.
  function cls(fixed) {
    var extra = v.randomIds ? rc() : "";
    return [fixed, extra].filter(function (c) { return c; }).join(" ");
  }

  // Incidental whitespace around and inside texts, chosen anew for every element.
  function pad(text) {
    if (!v.padded) { return text; }
    switch (Math.floor(Math.random() * 4)) {
      case 0: return "  " + text + " ";
      case 1: return text.replace(" ", "\u00a0");
      case 2: return "\n      " + text + "\n    ";
      default: return "\u00a0" + text;
    }
  }

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) {
      if (attrs[name] !== null && attrs[name] !== "") { node.setAttribute(name, attrs[name]); }
    });
    if (text !== undefined && text !== null) { node.textContent = text; }
    return node;
  }

  function wrapIn(node, depth) {
    for (var i = 0; i < depth; i++) {
      var wrapper = el("div", { "class": rc() });
      wrapper.appendChild(node);
      node = wrapper;
    }
    return node;
  }

  // A button in the variant's element type. `submitOf`: the form it submits.
  function makeButton(text, onClick, submitOf) {
    var button;
    if (v.button === "link") {
      button = el("a", { href: "#", role: "button", "class": cls("") }, pad(text));
    } else if (v.button === "input") {
      button = el("input", { type: "button", "class": cls("") });
      button.value = pad(text);
    } else {
      button = el("button", { type: submitOf ? "submit" : "button", "class": cls("") }, pad(text));
      if (submitOf) { return button; }
    }
    button.addEventListener("click", function (event) {
      event.preventDefault();
      if (button.disabled || button.getAttribute("aria-disabled") === "true") { return; }
      if (submitOf) { submitOf.requestSubmit(); } else { onClick(); }
    });
    return button;
  }

  function setBusy(form, busy) {
    form.querySelectorAll("button, input[type=button], a[role=button]").forEach(function (b) {
      if (b.tagName === "A") { b.setAttribute("aria-disabled", busy ? "true" : "false"); } else { b.disabled = busy; }
    });
  }

  function toast(text) {
    if (!v.toastMs) { return; }
    var node = el("div", {
      role: "status",
      "class": "toast " + rc(),
      style: "position:fixed;top:12px;right:12px;z-index:1000;min-width:280px;padding:14px 18px;" +
        "background:#1b5e20;color:#fff;box-shadow:0 2px 8px rgba(0,0,0,.3)"
    }, text);
    document.body.appendChild(node);
    setTimeout(function () { node.remove(); }, v.toastMs);
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

  // A typed dd-mm-yyyy date in the stored form, for rendering what was typed.
  function typedDate(value) {
    var m = /^(\d{2})-(\d{2})-(\d{4})$/.exec(String(value || "").trim());
    return m ? m[3] + "-" + m[2] + "-" + m[1] : value;
  }

  function countryName(code) {
    var match = COUNTRIES.find(function (c) { return c[0] === code; });
    return match ? match[1] : String(code || "");
  }

  function text(value) { return value === undefined || value === null ? "" : String(value); }

  function displayValue(f, value) {
    switch (f.kind) {
      case "phone": return localPhone(value);
      case "date": return displayDate(value);
      case "checkbox": return flagValue(value) ? "Ja" : "Nee";
      case "country": return countryName(value);
      default: return text(value);
    }
  }

  function inputName(f) {
    return config.oldInputNames && f.oldName ? f.oldName : f.key;
  }

  function makeInput(f, value, disabled) {
    var input;
    if (f.kind === "checkbox") {
      input = el("input", { type: "checkbox", name: inputName(f) });
      input.checked = flagValue(value);
    } else if (f.kind === "country") {
      input = el("select", { name: inputName(f) });
      var options = COUNTRIES.slice();
      if (value && !options.some(function (c) { return c[0] === value; })) { options.push([value, value]); }
      if (!value) { input.appendChild(el("option", { value: "" }, "")); }
      options.forEach(function (c) { input.appendChild(el("option", { value: c[0] }, c[1])); });
      input.value = value || "";
    } else {
      var type = "text";
      if (v.typedInputs && /^Email/.test(f.key)) { type = "email"; }
      if (v.typedInputs && f.kind === "phone") { type = "tel"; }
      input = el("input", { type: type, name: inputName(f) });
      input.value = f.kind === "phone" ? localPhone(value) : f.kind === "date" ? editDate(value) : text(value);
    }
    input.disabled = !!disabled;
    return input;
  }

  // A custom-styled checkbox: the real input is transparent under a styled span, or covered by
  // its own label. Both still toggle when the label is clicked, or the input via el.click().
  function styledCheckbox(f, input) {
    var id = rid();
    input.id = id;
    if (v.checkbox === "transparent") {
      var label = el("label", { "class": "custom-checkbox " + rc(), style: "position:relative;display:inline-block;padding-left:30px;min-height:22px" });
      input.setAttribute("style", "position:absolute;left:0;top:0;width:22px;height:22px;margin:0;opacity:0");
      var mark = el("span", { "class": "checkmark", style: "position:absolute;left:0;top:0;width:20px;height:20px;border:1px solid #555;border-radius:3px;background:#fff;z-index:1" });
      var paint = function () { mark.style.background = input.checked ? "#003a70" : "#fff"; };
      input.addEventListener("change", paint);
      paint();
      label.appendChild(input);
      label.appendChild(mark);
      label.appendChild(el("span", {}, f.label));
      return label;
    }
    var holder = el("div", { "class": "switch " + rc(), style: "position:relative;display:inline-block;min-width:24em;min-height:28px;overflow:hidden" });
    input.setAttribute("style", "margin:4px");
    var cover = el("label", { "for": id, style: "position:absolute;left:0;top:0;right:0;bottom:0;z-index:1;background:#fff;border:1px solid #888;border-radius:4px;padding:3px 8px;cursor:pointer;white-space:nowrap" });
    var state = el("span", { "class": "switch-state" });
    var paintCover = function () { state.textContent = input.checked ? "\u2611 " : "\u2610 "; };
    input.addEventListener("change", paintCover);
    paintCover();
    cover.appendChild(state);
    cover.appendChild(document.createTextNode(f.label));
    holder.appendChild(input);
    holder.appendChild(cover);
    return holder;
  }

  function fieldRow(f, value, disabled) {
    var input = makeInput(f, value, disabled);
    if (f.kind === "checkbox" && v.checkbox !== "plain") {
      return wrapIn(styledCheckbox(f, input), v.wrappers);
    }
    if (!v.randomIds) {
      var label = el("label");
      label.appendChild(el("span", {}, f.label + " "));
      label.appendChild(input);
      return wrapIn(label, v.wrappers);
    }
    var id = rid();
    input.id = id;
    var row = el("div", { "class": "form-group " + rc() });
    row.appendChild(el("label", { "for": id }, f.label));
    row.appendChild(wrapIn(input, v.wrappers));
    return row;
  }

  function readOnlyList(def, values) {
    if (v.layout === "table") {
      var table = el("table", { "class": cls("") });
      var tbody = el("tbody");
      def.fields.forEach(function (f) {
        var row = el("tr");
        row.appendChild(el("th", {}, f.label));
        row.appendChild(el("td", {}, displayValue(f, values[f.key])));
        tbody.appendChild(row);
      });
      table.appendChild(tbody);
      return table;
    }
    if (v.layout === "rows") {
      var list = el("div", { "class": cls("") });
      def.fields.forEach(function (f) {
        var row = el("div", { "class": "row " + rc() });
        row.appendChild(el("span", { "class": "label " + rc() }, f.label));
        row.appendChild(el("span", { "class": "value " + rc() }, displayValue(f, values[f.key])));
        list.appendChild(row);
      });
      return list;
    }
    var dl = el("dl", { "class": cls("") });
    def.fields.forEach(function (f) {
      dl.appendChild(el("dt", {}, f.label));
      dl.appendChild(el("dd", v.randomIds ? {} : { "data-field": f.key }, displayValue(f, values[f.key])));
    });
    return dl;
  }

  function removeEditButton(s) {
    if (s.editButton) { s.editButton.remove(); s.editButton = null; }
  }

  // `keptForm`: after a save in the "disable" variant, the edit form stays in the DOM, hidden,
  // its inputs disabled and still holding what was typed.
  function showReadOnly(s, keptForm) {
    var container = s.parts.body;
    container.replaceChildren();
    container.appendChild(readOnlyList(s.def, s.values));
    removeEditButton(s);
    if (s.editable) {
      var edit = makeButton("Wijzig", function () { showEdit(s); });
      if (v.editPlace === "header" && s.parts.head) {
        s.editButton = edit;
        s.parts.head.appendChild(edit);
      } else {
        container.appendChild(edit);
      }
    }
    if (keptForm) {
      keptForm.hidden = true;
      container.appendChild(keptForm);
    }
  }

  function showEdit(s) {
    removeEditButton(s);
    var container = s.parts.body;
    container.replaceChildren();
    s.errorBox = null;
    var form = el("form", { novalidate: "novalidate", "class": cls("") });
    s.def.fields.forEach(function (f) {
      form.appendChild(fieldRow(f, s.values[f.key], !s.def.saveable));
    });
    var actions = v.randomIds ? el("div", { "class": "form-actions " + rc() }) : form;
    if (s.def.saveable) {
      actions.appendChild(makeButton(v.saveText, null, form));
    } else {
      actions.appendChild(el("p", { "class": "note" }, "Deze gegevens kunnen in de simulator niet worden gewijzigd."));
    }
    actions.appendChild(makeButton(v.cancelText, function () { showReadOnly(s); }));
    if (actions !== form) { form.appendChild(actions); }
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      if (s.def.saveable && !s.busy) { save(s, form); }
    });
    container.appendChild(form);
  }

  function showError(s, form, message) {
    var box = s.errorBox;
    if (!box || !form.contains(box)) {
      switch (v.errorElement) {
        case "help-block": box = el("span", { "class": "help-block text-danger" }); break;
        case "alert": box = el("div", { role: "alert", "class": rc() }); break;
        case "form-message": box = el("p", { "class": "form-message" }); break;
        default: box = el("div", { "class": "validation-error", role: "alert" });
      }
      form.insertBefore(box, form.firstChild);
      s.errorBox = box;
    }
    box.textContent = message;
  }

  // What was typed, in the stored form, over the values shown before.
  function typedValues(s, posted) {
    var values = Object.assign({}, s.values);
    s.def.fields.forEach(function (f) {
      if (Object.prototype.hasOwnProperty.call(posted, f.key)) {
        values[f.key] = f.kind === "date" ? typedDate(posted[f.key]) : posted[f.key];
      }
    });
    return values;
  }

  async function storedAfterSave(s, result, posted) {
    if (v.refetch) {
      var again = await api(s.def.endpoint);
      if (again.status === 200 && again.body) { return s.def.fromData(unwrap(again.body)); }
      return typedValues(s, posted);
    }
    if (v.saveAnswer === "stored" && result.status === 200 && result.body) {
      return s.def.fromData(unwrap(result.body));
    }
    return typedValues(s, posted);
  }

  async function save(s, form) {
    var posted = {};
    s.def.fields.forEach(function (f) {
      var input = form.querySelector('[name="' + inputName(f) + '"]');
      if (input) { posted[f.key] = f.kind === "checkbox" ? input.checked : input.value; }
    });
    s.busy = true;
    setBusy(form, true);
    var result;
    var stored;
    try {
      result = await api(s.def.endpoint, {
        method: v.saveMethod,
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(s.def.toBody(posted))
      });
      if (result.status === 200 || result.status === 204) {
        stored = await storedAfterSave(s, result, posted);
      }
    } catch (e) {
      if (e instanceof SessionExpired) { return; }
      s.busy = false;
      setBusy(form, false);
      showError(s, form, v.serverErrorText);
      return;
    }
    if (stored) {
      await wait(config.renderDelayMs);
      s.values = stored;
      s.busy = false;
      if (v.afterSave === "disable") {
        form.querySelectorAll("input, select").forEach(function (i) { if (i.type !== "button") { i.disabled = true; } });
        form.querySelectorAll("button, input[type=button], a[role=button]").forEach(function (b) { b.remove(); });
        if (s.errorBox) { s.errorBox.remove(); s.errorBox = null; }
        showReadOnly(s, form);
      } else {
        showReadOnly(s);
      }
      toast("Gegevens opgeslagen");
      return;
    }
    s.busy = false;
    setBusy(form, false);
    var message = result.status >= 500 ? v.serverErrorText : (errorMessage(result.body) || v.serverErrorText);
    showError(s, form, message);
  }

  function headingNode(title) {
    // A heading Sportlink "renamed" (fault `renamed_sections`): the section is the same.
    title = (config.renamedSections || {})[title] || title;
    var heading = v.heading === "role"
      ? el("div", { role: "heading", "aria-level": "3" })
      : el(v.heading);
    if (v.padded && Math.random() < 0.5) {
      heading.appendChild(el("span", {}, pad(title)));
      heading.appendChild(document.createTextNode(" "));
    } else {
      heading.textContent = pad(title);
    }
    if (v.randomIds) {
      heading.id = rid();
      heading.className = rc();
    }
    return heading;
  }

  // The section element in the variant's markup: its outermost node (with any wrappers), the
  // header holding the heading (where a header Wijzig goes), and the body.
  function sectionShell(title) {
    var heading = headingNode(title);
    var root;
    var head = null;
    if (v.markup === "panel") {
      root = el("div", { "class": "panel panel-default " + rc() });
      head = el("div", { "class": "panel-heading " + rc() });
      head.appendChild(heading);
      root.appendChild(head);
    } else if (v.markup === "fieldset") {
      root = el("fieldset", { "class": cls("") });
      root.appendChild(heading);
      head = el("div", { "class": "fieldset-actions " + rc() });
      root.appendChild(head);
    } else if (v.markup === "article") {
      root = el("article", { "class": cls("card") });
      head = el("header", { "class": cls("card-header") });
      head.appendChild(heading);
      root.appendChild(head);
    } else {
      root = el("section", v.randomIds ? {} : { "data-section": title });
      if (v.editPlace === "header") {
        head = el("header", { "class": cls("") });
        head.appendChild(heading);
        root.appendChild(head);
      } else {
        root.appendChild(heading);
      }
    }
    if (v.randomIds) { root.id = rid(); }
    var body = el("div", { "class": v.markup === "panel" ? "panel-body " + rc() : cls("section-body") });
    root.appendChild(body);
    return { outer: wrapIn(root, v.wrappers), head: head, body: body };
  }

  function renderSection(title, values, editable) {
    var s = { def: SECTIONS[title], values: values, editable: editable, parts: sectionShell(title) };
    showReadOnly(s);
    return s.parts.outer;
  }

  function pageError(message) {
    main.replaceChildren(el("p", { "class": "page-error" }, message));
    main.setAttribute("aria-busy", "false");
  }

  async function sectionData(title, header) {
    var def = SECTIONS[title];
    if (def.fromHeader) { return def.fromData(header); }
    if (!def.endpoint) { return {}; }
    var result = await api(def.endpoint);
    return result.status === 200 && result.body ? def.fromData(unwrap(result.body)) : null;
  }

  function showStatus(status) {
    var node = document.getElementById(ids.status);
    if (v.statusBadge) {
      var kind = status === config.formerMemberStatus ? "badge-secondary" : "badge-success";
      node.replaceChildren(el("span", { "class": "badge " + kind + " " + rc() }, status));
    } else {
      node.textContent = status;
    }
  }

  // Sections render together, or each as soon as its own data and delay allow, at its place in
  // the order.
  async function load() {
    var head = await api("/member/MemberHeader");
    if (head.status !== 200 || !head.body) {
      pageError(errorMessage(head.body) || v.serverErrorText);
      return;
    }
    var header = unwrap(head.body);
    document.getElementById(ids.name).textContent = header.FullName || "";
    showStatus(header.MemberStatus || "");
    var editable = header.MemberStatus !== config.formerMemberStatus;
    var titles = config.sections;
    if (config.sectionsFromHeader) {
      var present = header.Sections || [];
      titles = titles.filter(function (t) { return present.indexOf(t) >= 0; });
    }
    if (!v.oneByOne) {
      // All at once, after all the data and the longest delay.
      var data = await Promise.all(titles.map(function (t) { return sectionData(t, header); }));
      var longest = titles.reduce(function (m, t) { return Math.max(m, v.delays[t] || 0); }, 0);
      await wait(config.renderDelayMs + longest);
      titles.forEach(function (title, i) {
        if (data[i] !== null) { main.appendChild(renderSection(title, data[i], editable)); }
      });
      main.setAttribute("aria-busy", "false");
      return;
    }
    var placed = [];
    await Promise.all(titles.map(async function (title, i) {
      var sectionValues = await sectionData(title, header);
      if (sectionValues === null) { return; }
      await wait(config.renderDelayMs + (v.delays[title] || 0));
      var node = renderSection(title, sectionValues, editable);
      placed[i] = node;
      var next = null;
      for (var j = i + 1; j < placed.length && !next; j++) { next = placed[j] || null; }
      main.insertBefore(node, next);
    }));
    main.setAttribute("aria-busy", "false");
  }

  function wireHeaderButtons() {
    var dialog = document.getElementById(ids.dialog);
    var buttons = document.getElementById(ids.header)
      .querySelectorAll("button, a[role=button], input[type=button]");
    buttons.forEach(function (button) {
      button.addEventListener("click", function (event) {
        event.preventDefault();
        dialog.hidden = false;
      });
    });
    document.getElementById(ids.dialogClose).addEventListener("click", function () {
      dialog.hidden = true;
    });
  }

  wireHeaderButtons();
  toast("Welkom terug");
  load().catch(function (e) {
    if (!(e instanceof SessionExpired)) { pageError(v.serverErrorText); }
  });
})

// The claim page: the bill image with its OCR boxes (zoom, pan, box <-> field), the claim's fields with the
// reasons they need review, the product's checks re-run on every edit (POST /v1/claims/{id}/check, a dry run),
// save with If-Match, approve and reject. Keyboard first: Tab/Shift+Tab or j/k move through the flagged fields,
// typing replaces the value, Enter saves, Esc undoes the field.
"use strict";
(() => {
  const { call, say, el } = Desk;
  const root = document.querySelector(".claim");
  const claimId = root.dataset.claimId;
  const LABELS = { hospital: "医院 hospital", payer: "交款人 payer", bill_code: "票据代码 bill code",
    bill_no: "票据号码 bill no.", check_code: "校验码 check code", issue_date: "开票日期 date",
    patient_name: "姓名 name", inpatient_no: "住院号 inpatient no.", department: "科别 department",
    admitted: "入院 admitted", discharged: "出院 discharged", insurance_type: "医保类型 insurance",
    total_figures: "合计(小写) total", total_words: "合计(大写) total in words", fund: "统筹支付 fund",
    self_pay: "个人自付 self pay", self_expense: "个人自费 self expense", personal_account: "个人账户 account",
    cash: "现金 cash", buyer: "购买方 buyer", seller: "销售方 seller", tax: "税额 tax",
    amount_excl_tax: "金额 amount excl. tax" };
  const RULES = { "total.items_sum": "items add up to the total", "total.words_match_figures": "大写 = 小写 (words = figures)",
    "payment.fund_self_pay_self_expense": "统筹 + 自付 + 自费 = total", "payment.fund_account_cash": "统筹 + 账户 + 现金 = total",
    "payment.deposit_settlement": "预缴 + 补缴 − 退费 = 现金", "invoice.tax_sum": "line taxes add up to the tax",
    "invoice.amount_plus_tax": "amount + tax = total", "amounts.unverified": "every amount is pinned down by a check" };
  const ruleName = (rule) => {
    const m = /^item\.(quantity_times_price|tax)\[(\d+)\]$/.exec(rule);
    if (m) return `line ${+m[2] + 1}: ` + (m[1] === "tax" ? "amount × rate = tax" : "quantity × price = amount");
    return RULES[rule] || rule;
  };
  const offBy = (detail) => { const m = /difference ([-+]?[\d.,]+)/.exec(detail || ""); return m ? ` (off by ${m[1]})` : ""; };

  let claim = null, etag = null, original = new Map(), edits = new Map(), initiallyFlagged = new Set();
  let report = null, checkTimer = null, checkSeq = 0, saving = false;

  const inputs = () => [...document.querySelectorAll("#claim-form input[data-path]")];
  const inputFor = (path) => document.querySelector(`#claim-form input[data-path="${CSS.escape(path)}"]`);
  const fieldAt = (path) => {
    const m = /^items\[(\d+)\]\.(\w+)$/.exec(path);
    if (m) return (claim.items[+m[1]] || { fields: {} }).fields[m[2]] || null;
    const [group, key] = path.split(".");
    if (key) return (claim[group] || {})[key] || null;
    return claim[group] || null;
  };
  // flagged now: what the checks (on the stored claim plus the edits) say needs review or pins down nothing,
  // and any unedited field the OCR read with low confidence or could not read
  const currentFlags = () => {
    const now = new Set(report ? [...report.needs_review, ...report.unverified] : initiallyFlagged);
    for (const p of initiallyFlagged) {
      const f = fieldAt(p);
      if (!edits.has(p) && f && (f.confidence < 0.9 || (f.value === null && f.raw))) now.add(p);
    }
    return now;
  };
  // the order Tab/j/k visit the flagged fields in: most suspect first. A field's suspicion is read off the
  // product's check results: +2 for each failing check it is in, +1 for each it makes unreadable, -1 for each
  // passing one (a passing check vouches for it); ties keep the page order.
  const suspicion = (path) => {
    let s = 0;
    for (const r of (report ? report.results : [])) if (r.fields.includes(path)) s += r.passed === true ? -1 : r.passed === false ? 2 : 1;
    return s;
  };
  // a value the product changed from what the OCR read, because only that value satisfies the bill's checks
  const repairedAt = (path) => { const f = fieldAt(path); return !edits.has(path) && !!f && /^repaired/.test(f.note || ""); };
  const navigable = () => {
    const flags = currentFlags();
    const list = inputs().filter((i) => flags.has(i.dataset.path) || initiallyFlagged.has(i.dataset.path)
                                        || edits.has(i.dataset.path) || repairedAt(i.dataset.path));
    // repaired fields last: the checks vouch for them, the clerk only confirms them against the image
    const score = new Map(list.map((i, k) => [i, [suspicion(i.dataset.path) - (repairedAt(i.dataset.path) ? 10 : 0), k]]));
    return list.sort((a, b) => score.get(b)[0] - score.get(a)[0] || score.get(a)[1] - score.get(b)[1]);
  };

  // --- rendering ----------------------------------------------------------------------------------------
  function reasonOf(path, f) {
    const out = [];
    for (const r of (report ? report.results : [])) {
      if (r.passed !== true && r.fields.includes(path)) out.push(r.passed === null ? ruleName(r.rule) + ": cannot be checked"
                                                                                 : "✗ " + ruleName(r.rule) + offBy(r.detail));
    }
    if (f && f.confidence < 0.9 && !edits.has(path)) out.push(`read with low confidence (${f.confidence.toFixed(2)})`);
    if (f && f.value === null && f.raw) out.push(`could not read “${f.raw}”`);
    if (!out.length && f && f.needs_review && !edits.has(path)) out.push("no check confirms this value");
    return out.join("; ");
  }

  function fieldRow(label, path, f, extra) {
    const value = edits.has(path) ? edits.get(path) : (f && f.value !== null ? f.value : "");
    original.set(path, f && f.value !== null ? f.value : "");
    const input = el("input", { "data-path": path, id: "f-" + path.replace(/[^a-z0-9]/gi, "_"), value,
      "aria-label": label, inputmode: f && (f.kind === "amount" || f.kind === "number") ? "decimal" : undefined });
    return el("tr", { "data-path": path },
      el("th", {}, el("label", { for: input.id, text: label })), el("td", {}, input),
      el("td", { class: "raw", title: "what the OCR read", text: f ? f.raw : "" }),
      el("td", { class: "conf", text: f ? f.confidence.toFixed(2) : "" }),
      el("td", { class: "why" }), extra ? el("td", { class: "extra" }, extra) : null);
  }

  function render() {
    document.getElementById("claim-title").textContent = (claim.hospital || "Claim") + (claim.issue_date ? " · " + claim.issue_date : "");
    const st = document.getElementById("claim-status");
    st.textContent = claim.status + " · v" + claim.version;
    st.className = "status " + claim.status;
    const header = document.getElementById("header-fields");
    header.replaceChildren(...Object.entries(claim.header).map(([k, f]) => fieldRow(LABELS[k] || k, "header." + k, f)));
    const items = document.getElementById("item-fields");
    items.replaceChildren(el("tr", {}, el("th", { text: "#" }), el("th", { text: "value" }), el("th", { text: "read" }),
      el("th", { text: "conf." }), el("th", { text: "why" }), el("th", { text: "catalogue" })));
    claim.items.forEach((it, i) => {
      for (const name of ["name", "amount", "quantity", "unit_price", "spec"]) {
        const f = it.fields[name];
        if (!f) continue;
        items.append(fieldRow(`${it.line_no + 1}. ${name}`, `items[${i}].${name}`, f, name === "name" ? matchCell(it, i) : null));
      }
    });
    const totals = document.getElementById("total-fields");
    totals.replaceChildren(...["total_figures", "total_words"].filter((k) => claim[k]).map((k) => fieldRow(LABELS[k], k, claim[k])));
    const pays = document.getElementById("payment-fields");
    pays.replaceChildren(...Object.entries(claim.payments).map(([k, f]) => fieldRow(LABELS[k] || k, "payments." + k, f)));
    const fl = document.getElementById("findings");
    fl.replaceChildren(...claim.findings.map((f) => el("li", { class: f.severity, text: `${f.severity}: ${ruleName(f.rule)} — ${f.message || f.detail}` })));
    const closed = claim.status !== "pending";
    for (const i of inputs()) i.readOnly = closed;
    for (const id of ["save", "approve", "reject"]) document.getElementById(id).disabled = closed;
    drawBoxes();
    decorate();
  }

  // the line's catalogue match and its runners-up (GET /v1/claims/{id}/alternatives); picking one saves it at
  // once as a correction of items[n].match_code (If-Match), which the history shows like any other
  let alternatives = {};
  function matchCell(it, i) {
    if (!it.match) return el("span", { class: "muted", "data-match-item": String(i), text: "no catalogue match" });
    const alts = alternatives[String(it.line_no)] || [];
    const m = it.match;
    const box = el("div", { "data-match-item": String(i) },
      el("span", { class: "match", title: m.category || "", text: `${m.code} ${m.name} (${m.score.toFixed(0)}, ${m.method === "clerk" ? "picked by a clerk" : m.method})` }));
    if (alts.length) {
      const sel = el("select", { "aria-label": `line ${it.line_no + 1}: catalogue alternatives`, tabindex: "-1" },
        el("option", { value: "", text: `${alts.length} alternatives…` }),
        ...alts.map((a) => el("option", { value: a.code, text: `${a.code} ${a.name} (${a.score.toFixed(0)})` })));
      sel.disabled = claim.status !== "pending";
      sel.addEventListener("change", () => { if (sel.value) pickMatch(i, sel.value); });
      box.append(sel);
    }
    return box;
  }
  async function loadAlternatives() {
    const r = await call("GET", `/v1/claims/${claimId}/alternatives`, { what: "claim" });
    if (!r.ok) { say(r.message); return false; }
    alternatives = r.body.alternatives;
    return true;
  }
  async function pickMatch(i, code) {
    if (saving) return;
    saving = true;
    const input = document.getElementById("reason");  // the clerk's own reason, not the default for typed corrections
    const reason = (input.value !== input.defaultValue && input.value.trim()) || "catalogue match picked from the alternatives";
    const r = await call("PATCH", `/v1/claims/${claimId}`, { json: { changes: [{ field: `items[${i}].match_code`, value: code }], reason },
      headers: { "If-Match": etag }, what: "claim" });
    saving = false;
    if (!r.ok) { say(r.message, r.status === 412 ? "conflict" : "error"); if (r.status === 412) offerReload(); render(); return; }
    claim = r.body; etag = r.headers.get("ETag") || claim.etag;  // unsaved edits of other fields are kept
    await loadAlternatives();
    render(); loadHistory();
    say(`Line ${claim.items[i].line_no + 1} is matched to ${code} now.`, "ok");
  }

  // the claim's reconciliation against the HIS charges and the bureau's rules (stored findings, read-only here)
  async function loadReconciliation() {
    const box = document.getElementById("reconciliation");
    const r = await call("GET", `/v1/claims/${claimId}/reconciliation`, { what: "reconciliation" });
    const note = (text) => el("p", { class: "muted note", text });
    if (!r.ok) box.replaceChildren(note(r.status === 404 ? "Not reconciled: the claim is not in the graph yet."
                                                          : `Reconciliation is not available (${r.message}).`));
    else if (!r.body.reconciled_at) box.replaceChildren(note("Not reconciled yet."));
    else if (!r.body.findings.length) box.replaceChildren(note(`Reconciled ${r.body.reconciled_at.slice(0, 19).replace("T", " ")}: no findings.`));
    else {
      const show = (v) => (v !== null && typeof v === "object" ? JSON.stringify(v) : String(v));
      const short = (id) => String(id ?? "").replace(/[0-9a-f]{64}/g, (h) => h.slice(0, 8) + "…");
      const cite = (c) => [c.role, (c.labels || []).join("/"), short(c.id), c.sentence ? `“${c.sentence}”` : ""].filter(Boolean).join(" ");
      box.replaceChildren(el("ul", { class: "findings" }, ...r.body.findings.map((f) => {
        const evidence = Object.entries(f.evidence || {}).filter(([k]) => k !== "claim_id");
        return el("li", { class: f.severity, "data-rule": f.rule },
          el("span", { class: "rule", text: `${f.severity}: ${f.rule}` }), " — ",
          el("span", { class: "recon-message", lang: "zh-CN", text: f.message || f.detail || "" }),
          (f.cites || []).length ? el("p", { class: "cites muted", text: "cites: " + f.cites.map(cite).join("; ") }) : null,
          evidence.length ? el("details", {}, el("summary", { text: "evidence" }),
            el("dl", { class: "evidence" }, ...evidence.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { text: show(v) })]))) : null);
      })));
    }
    if (claim.status === "pending") box.append(el("button", { type: "button", id: "reconcile-now", text: "Reconcile now",
      onclick: reconcileNow }));
    box.dataset.loaded = "true";
  }
  async function reconcileNow() {
    const r = await call("POST", `/v1/claims/${claimId}/reconciliation`, { what: "reconciliation" });
    if (!r.ok) { say(r.message, r.status === 409 ? "info" : "error"); return; }
    say(`Reconciled: ${r.body.findings.length} finding(s).`, "ok");
    loadReconciliation();
  }

  function decorate() {
    const flags = currentFlags();
    for (const input of inputs()) {
      const path = input.dataset.path, row = input.closest("tr"), f = fieldAt(path);
      const flagged = flags.has(path), edited = edits.has(path);
      row.classList.toggle("flagged", flagged);
      row.classList.toggle("edited", edited);
      row.classList.toggle("fixed", edited && !flagged);
      const repaired = !flagged && repairedAt(path);
      row.classList.toggle("repaired", repaired);
      const why = row.querySelector(".why");
      why.textContent = edited && !flagged ? "corrected: checks pass"
        : flagged ? reasonOf(path, f) : repaired ? `read “${f.raw}”, repaired by the checks: confirm on the image` : "";
      why.title = report ? report.results.filter((r) => r.passed !== true && r.fields.includes(path)).map((r) => r.detail).join("\n") : "";
      const poly = document.querySelector(`#boxes polygon[data-path="${CSS.escape(path)}"]`);
      if (poly) { poly.classList.toggle("flagged", flagged); poly.classList.toggle("fixed", edited && !flagged); poly.classList.toggle("repaired", repaired); }
    }
    const panel = document.getElementById("checks");
    if (!report) { panel.replaceChildren(); return; }
    const failing = report.results.filter((r) => r.passed !== true);
    panel.replaceChildren(el("div", { class: "verdict " + (report.all_passed ? "pass" : "fail"), id: "verdict",
        text: report.all_passed ? `All ${report.results.length} checks pass` : `${failing.length} of ${report.results.length} checks fail` }),
      el("ul", {}, ...report.results.map((r) => el("li", { class: r.passed ? "pass" : "fail", "data-rule": r.rule, title: r.detail,
        text: `${r.passed ? "✓" : r.passed === null ? "?" : "✗"} ${ruleName(r.rule)}${r.passed ? "" : offBy(r.detail)}` }))));
  }

  // --- the image -----------------------------------------------------------------------------------------
  const view = { s: 1, x: 0, y: 0 };
  const stage = document.getElementById("stage"), viewer = document.getElementById("viewer"), img = document.getElementById("page-image");
  const apply = () => { stage.style.transform = `translate(${view.x}px, ${view.y}px) scale(${view.s})`; };
  function fit() {
    if (!img.naturalWidth) return;
    view.s = viewer.clientWidth / img.naturalWidth; view.x = 0; view.y = 0; apply();
  }
  function zoom(f, cx = viewer.clientWidth / 2, cy = viewer.clientHeight / 2) {
    const s = Math.min(8, Math.max(0.05, view.s * f));
    view.x = cx - (cx - view.x) * (s / view.s); view.y = cy - (cy - view.y) * (s / view.s); view.s = s; apply();
  }
  function showBox(path) {
    for (const p of document.querySelectorAll("#boxes polygon.selected")) p.classList.remove("selected");
    const f = fieldAt(path);
    const poly = document.querySelector(`#boxes polygon[data-path="${CSS.escape(path)}"]`);
    if (poly) poly.classList.add("selected");
    if (!f || !f.box) return;
    const xs = f.box.map((p) => p[0]), ys = f.box.map((p) => p[1]);
    const cx = (Math.min(...xs) + Math.max(...xs)) / 2, cy = (Math.min(...ys) + Math.max(...ys)) / 2;
    const sx = view.x + cx * view.s, sy = view.y + cy * view.s;
    if (sx < 20 || sy < 20 || sx > viewer.clientWidth - 20 || sy > viewer.clientHeight - 20) {
      view.x = viewer.clientWidth / 2 - cx * view.s; view.y = viewer.clientHeight / 2 - cy * view.s; apply();
    }
  }
  function drawBoxes() {
    const svg = document.getElementById("boxes");
    svg.replaceChildren();
    if (!img.naturalWidth) return;
    svg.setAttribute("viewBox", `0 0 ${img.naturalWidth} ${img.naturalHeight}`);
    svg.setAttribute("width", img.naturalWidth); svg.setAttribute("height", img.naturalHeight);
    for (const input of inputs()) {
      const f = fieldAt(input.dataset.path);
      if (!f || !f.box) continue;
      const poly = document.createElementNS("http://www.w3.org/2000/svg", "polygon");
      poly.setAttribute("points", f.box.map((p) => p.join(",")).join(" "));
      poly.dataset.path = input.dataset.path;
      poly.addEventListener("click", (ev) => { ev.stopPropagation(); const i = inputFor(poly.dataset.path); if (i) i.focus(); });
      const title = document.createElementNS("http://www.w3.org/2000/svg", "title");
      title.textContent = input.getAttribute("aria-label");
      poly.append(title);
      svg.append(poly);
    }
    const active = document.activeElement;
    if (active && active.dataset && active.dataset.path) showBox(active.dataset.path);
  }
  function wireViewer() {
    document.getElementById("zoom-in").addEventListener("click", () => zoom(1.25));
    document.getElementById("zoom-out").addEventListener("click", () => zoom(0.8));
    document.getElementById("zoom-fit").addEventListener("click", fit);
    viewer.addEventListener("wheel", (ev) => { ev.preventDefault(); const r = viewer.getBoundingClientRect();
      zoom(ev.deltaY < 0 ? 1.15 : 1 / 1.15, ev.clientX - r.left, ev.clientY - r.top); }, { passive: false });
    let drag = null;
    viewer.addEventListener("pointerdown", (ev) => { if (ev.target.tagName === "polygon") return;
      drag = { x: ev.clientX - view.x, y: ev.clientY - view.y }; viewer.setPointerCapture(ev.pointerId); });
    viewer.addEventListener("pointermove", (ev) => { if (drag) { view.x = ev.clientX - drag.x; view.y = ev.clientY - drag.y; apply(); } });
    viewer.addEventListener("pointerup", () => { drag = null; });
    img.addEventListener("load", () => { fit(); drawBoxes(); decorate(); });
  }

  // --- editing, checks, saving -----------------------------------------------------------------------------
  function setEdit(path, value) {
    if (value === original.get(path)) edits.delete(path); else edits.set(path, value);
    const input = inputFor(path);
    if (input && input.value !== value) input.value = value;
    scheduleCheck();
  }
  function changes() {
    return [...edits].map(([field, value]) => ({ field, value: value.trim() === "" ? null : value.trim() }));
  }
  function scheduleCheck() { clearTimeout(checkTimer); checkTimer = setTimeout(runCheck, 200); }
  async function runCheck() {
    const seq = ++checkSeq;
    const r = await call("POST", `/v1/claims/${claimId}/check`, { json: { changes: changes() }, what: "claim" });
    if (seq !== checkSeq) return;
    if (!r.ok) { if (r.status === 422) say(r.message, "warn"); else say(r.message); return; }
    if (document.getElementById("message").classList.contains("warn")) say("");
    report = r.body; decorate();
  }
  async function save() {
    if (saving) return;
    if (!edits.size) { say("Nothing to save: no field was changed.", "info"); return; }
    clearTimeout(checkTimer);
    saving = true;
    const reason = document.getElementById("reason").value.trim() || "corrected from the bill image";
    const r = await call("PATCH", `/v1/claims/${claimId}`, { json: { changes: changes(), reason }, headers: { "If-Match": etag }, what: "claim" });
    saving = false;
    if (!r.ok) { say(r.message, r.status === 412 ? "conflict" : "error"); if (r.status === 412) offerReload(); return; }
    const focused = document.activeElement && document.activeElement.dataset ? document.activeElement.dataset.path : null;
    claim = r.body; etag = r.headers.get("ETag") || claim.etag; edits.clear();
    initiallyFlagged = new Set(flaggedOf(claim));
    await runCheck(); render(); loadHistory();
    say(report && report.all_passed ? "Saved. All checks pass." : "Saved. Some checks still fail; see the flagged fields.", "ok");
    const next = navigable()[0] || (focused && inputFor(focused));
    if (next) next.focus();
  }
  function offerReload() {
    const box = document.getElementById("message");
    box.append(" ", el("button", { type: "button", id: "reload-keep", text: "Reload, keeping my edits",
      onclick: () => reload(true) }));
  }
  async function decide(action) {
    const reason = document.getElementById("reason").value.trim() || action;
    const r = await call("POST", `/v1/claims/${claimId}/${action}`, { json: { reason }, headers: { "If-Match": etag }, what: "claim" });
    if (!r.ok) { say(r.message, r.status === 412 ? "conflict" : "error"); if (r.status === 412) offerReload(); return; }
    claim = r.body; etag = r.headers.get("ETag") || claim.etag; render(); loadHistory();
    say(action === "approve" ? "Approved." : "Rejected.", "ok");
  }
  const flaggedOf = (c) => {
    const out = [];
    for (const [k, f] of Object.entries(c.header)) if (f.needs_review) out.push("header." + k);
    c.items.forEach((it, i) => { for (const [n, f] of Object.entries(it.fields)) if (f.needs_review) out.push(`items[${i}].${n}`); });
    for (const k of ["total_figures", "total_words"]) if (c[k] && c[k].needs_review) out.push(k);
    for (const [k, f] of Object.entries(c.payments)) if (f.needs_review) out.push("payments." + k);
    return out;
  };

  async function reload(keep) {
    const r = await call("GET", `/v1/claims/${claimId}`, { what: "claim" });
    if (!r.ok) { say(r.message); return false; }
    claim = r.body; etag = r.headers.get("ETag") || claim.etag;
    if (!keep) edits.clear();
    initiallyFlagged = new Set(flaggedOf(claim));
    original = new Map();
    render();
    await runCheck();
    loadHistory();
    if (keep && edits.size) say("Reloaded with the other change; your edits are kept. Press Enter to save them.", "info");
    else say("");
    return true;
  }
  async function loadHistory() {
    const r = await call("GET", `/v1/claims/${claimId}/history`, { what: "claim" });
    const ol = document.getElementById("history");
    if (!r.ok) return;
    ol.replaceChildren(...r.body.map((h) => el("li", { text: `${h.at.slice(0, 19).replace("T", " ")} ${h.user}: ${h.field} ${h.old ?? "∅"} → ${h.new ?? "∅"} (${h.reason})` })));
  }

  function move(step) {
    const list = navigable();
    if (!list.length) return false;
    const at = list.indexOf(document.activeElement);
    const next = at < 0 ? (step > 0 ? list[0] : list[list.length - 1]) : list[(at + step + list.length) % list.length];
    next.focus();
    return true;
  }
  function wireKeys() {
    const form = document.getElementById("claim-form");
    form.addEventListener("submit", (ev) => { ev.preventDefault(); save(); });
    form.addEventListener("input", (ev) => { const p = ev.target.dataset.path; if (p) setEdit(p, ev.target.value); });
    form.addEventListener("focusin", (ev) => { const p = ev.target.dataset.path; if (p) { ev.target.select(); showBox(p); } });
    document.getElementById("approve").addEventListener("click", () => decide("approve"));
    document.getElementById("reject").addEventListener("click", () => decide("reject"));
    document.addEventListener("keydown", (ev) => {
      const t = ev.target, inField = t.dataset && t.dataset.path;
      if (ev.key === "Tab" && inField && !ev.ctrlKey && !ev.altKey && navigable().includes(t)) {
        if (move(ev.shiftKey ? -1 : 1)) ev.preventDefault();
      } else if (ev.key === "Escape" && inField) {
        setEdit(t.dataset.path, original.get(t.dataset.path) || ""); t.select();
      } else if (!inField && !["INPUT", "SELECT", "TEXTAREA", "BUTTON"].includes(t.tagName) && !ev.ctrlKey && !ev.metaKey && !ev.altKey) {
        if (ev.key === "j" || ev.key === "k") { if (move(ev.key === "j" ? 1 : -1)) ev.preventDefault(); }
        else if (ev.key === "+" || ev.key === "=") zoom(1.25);
        else if (ev.key === "-") zoom(0.8);
        else if (ev.key === "0") fit();
      }
    });
  }

  document.addEventListener("DOMContentLoaded", async () => {
    if (!Desk.session()) return;
    wireViewer(); wireKeys();
    if (!(await loadAlternatives())) { root.classList.add("denied"); return; }
    if (!(await reload(false))) return;
    loadReconciliation();
    const page = await call("GET", `/v1/claims/${claimId}/pages/${claim.page}`, { blob: true, what: "page image" });
    if (page.ok) img.src = URL.createObjectURL(page.body); else say(page.message);
    const first = navigable()[0];
    if (first) first.focus();
    root.dataset.ready = "true";
  });
})();

// The queue: pending claims, oldest first, with why each needs a clerk (GET /v1/review/queue).
"use strict";
(() => {
  const { call, say, el, session } = Desk;
  const TYPES = { inpatient_e_receipt: "inpatient e-receipt", outpatient_e_receipt: "outpatient e-receipt",
                  paper_receipt: "paper receipt", itemised_list: "itemised list", vat_invoice: "VAT invoice",
                  not_a_bill: "not a bill" };

  async function load() {
    const form = document.getElementById("filters");
    const q = new URLSearchParams();
    for (const name of ["hospital", "doc_type", "since", "until", "reason"]) {
      const v = form.elements[name].value.trim();
      if (v) q.set(name, v);
    }
    const r = await call("GET", "/v1/review/queue?" + q, { what: "queue" });
    const body = document.querySelector("#queue-table tbody");
    body.replaceChildren();
    if (!r.ok) { say(r.message); return; }
    say("");
    const d = r.body;
    const counts = document.getElementById("counts");
    counts.replaceChildren(el("span", { class: "count total", text: `${d.total} pending` }),
      ...Object.entries(d.counts).sort().map(([k, n]) => el("button", {
        type: "button", class: "count", "data-reason": k, text: `${k}: ${n}`,
        onclick: () => { form.elements.reason.value = k; load(); } })));
    d.claims.forEach((c, i) => {
      const link = el("a", { href: "/ui/claims/" + c.claim_id, class: "open", text: String(i + 1) });
      body.append(el("tr", { "data-claim-id": c.claim_id },
        el("td", {}, link), el("td", { text: c.created_at.slice(0, 16).replace("T", " ") }),
        el("td", { text: c.hospital || "—" }), el("td", { text: TYPES[c.doc_type] || c.doc_type }),
        el("td", { text: c.issue_date || "—" }), el("td", { class: "num", text: c.total ?? "—" }),
        el("td", { class: "num", text: String(c.flagged) }),
        el("td", {}, ...c.reasons.map((w) => el("span", { class: "reason", text: w })))));
    });
    document.getElementById("empty").hidden = d.claims.length > 0;
    const first = body.querySelector("a.open");
    if (first && document.activeElement === document.body) first.focus();
  }

  document.addEventListener("DOMContentLoaded", () => {
    const s = session();
    if (!s) return;
    if (s.role !== "clerk") {
      document.querySelector(".queue").replaceChildren(el("h1", { text: "Review desk" }),
        el("p", { text: s.role === "clinician" ? "Enter a patient id above to open the patient's record."
                                                : "Your role has no pages on the review desk." }));
      if (s.role === "clinician") document.getElementById("patient-id").focus();
      return;
    }
    document.getElementById("filters").addEventListener("submit", (ev) => { ev.preventDefault(); load(); });
    load();
  });
})();

// The patient page (clinicians): each document's sentences with the entities highlighted by type and their
// assertion shown (negated struck through, possible dashed, family and historical marked), the relations stated
// in each document with their evidence, filters by type, assertion and date (applied by the API).
// Own markup, not displaCy: see api/ui/routes.py's module docstring for the measurement behind the choice.
"use strict";
(() => {
  const { call, say, el } = Desk;
  const root = document.querySelector(".patient");
  const pid = root.dataset.pid;
  const TYPES = ["Disease", "Symptom", "Drug", "Procedure", "Exam", "LabTest", "BodyPart", "Department", "Microbe",
                 "Equipment", "Item", "Factor"];
  const ZH = { Disease: "疾病", Symptom: "症状", Drug: "药物", Procedure: "手术/操作", Exam: "检查", LabTest: "检验",
               BodyPart: "部位", Department: "科室", Microbe: "微生物", Equipment: "器械", Item: "项目", Factor: "因素" };
  const ASSERT = { affirmed: "", negated: "否定", possible: "可能", historical: "既往", family: "家族" };

  // a sentence's offset in its document, from its mentions' document offsets and where their text sits in it
  function sentenceOffset(evidence, mentions) {
    const votes = new Map();
    for (const m of mentions) {
      if (m.start === null || !m.text) continue;
      let i = evidence.indexOf(m.text);
      while (i >= 0) { const o = m.start - i; votes.set(o, (votes.get(o) || 0) + 1); i = evidence.indexOf(m.text, i + 1); }
    }
    let best = null, n = 0;
    for (const [o, v] of votes) if (v > n || (v === n && o < best)) { best = o; n = v; }
    return best;
  }

  // the sentence's text with its mentions as nested marks; overlapping ones are kept apart by splitting
  function markSentence(evidence, offset, mentions) {
    const spans = [];
    for (const m of mentions) {
      let s = offset !== null ? m.start - offset : evidence.indexOf(m.text);
      if (s < 0 || evidence.slice(s, s + m.text.length) !== m.text) s = evidence.indexOf(m.text);
      if (s < 0) continue;
      spans.push({ s, e: s + m.text.length, m });
    }
    spans.sort((a, b) => a.s - b.s || b.e - a.e);
    const out = el("p", { class: "sentence" });
    // outer spans first; an inner span that crosses its parent's end is cut at it
    function emit(parent, from, to, list) {
      let at = from;
      for (let k = 0; k < list.length; k++) {
        const sp = list[k];
        if (sp.s < at) continue;
        if (sp.s > at) parent.append(evidence.slice(at, sp.s));
        const end = Math.min(sp.e, to);
        const mark = el("mark", { class: `ent t-${sp.m.type} a-${sp.m.assertion || "affirmed"}`, "data-type": sp.m.type,
          "data-assertion": sp.m.assertion || "affirmed", title: `${sp.m.type} ${ZH[sp.m.type] || ""} · ${sp.m.name || ""}` +
            ` · ${sp.m.assertion}${sp.m.confidence !== null ? " · " + sp.m.confidence.toFixed(2) : ""}` });
        const inner = list.slice(k + 1).filter((x) => x.s >= sp.s && x.s < end);
        emit(mark, sp.s, end, inner);
        const tag = ASSERT[sp.m.assertion];
        mark.append(el("sup", { class: "lbl", text: sp.m.type + (tag ? "·" + tag : "") }));
        parent.append(mark);
        at = end;
        k += inner.length;
      }
      if (at < to) parent.append(evidence.slice(at, to));
    }
    emit(out, 0, evidence.length, spans);
    return out;
  }

  function render(emr, facts, timeline) {
    const docs = new Map();
    const dated = new Map(timeline.filter((e) => e.kind === "document").map((e) => [e.doc_id, e]));
    for (const [type, entries] of Object.entries(emr.concepts)) {
      for (const e of entries) {
        if (!docs.has(e.doc_id)) docs.set(e.doc_id, { date: e.date, encounter: e.encounter_id, sentences: new Map() });
        const d = docs.get(e.doc_id);
        const key = e.evidence || e.text;
        if (!d.sentences.has(key)) d.sentences.set(key, []);
        d.sentences.get(key).push({ ...e, type });
      }
    }
    const byDoc = new Map();
    for (const f of facts) { if (!byDoc.has(f.doc_id)) byDoc.set(f.doc_id, []); byDoc.get(f.doc_id).push(f); }
    const host = document.getElementById("documents");
    host.replaceChildren();
    const order = [...docs.entries()].sort((a, b) => (b[1].date || "").localeCompare(a[1].date || "") || a[0].localeCompare(b[0]));
    if (!order.length) host.append(el("p", { class: "muted", text: "No findings match these filters." }));
    for (const [docId, d] of order) {
      const sentences = [...d.sentences.entries()].map(([ev, ms]) => ({ ev, ms, o: sentenceOffset(ev, ms) }))
        .sort((a, b) => (a.o ?? 1e9) - (b.o ?? 1e9));
      const t = dated.get(docId);
      const art = el("article", { class: "doc", "data-doc-id": docId },
        el("h2", { text: `${d.date ? d.date.slice(0, 10) : "undated"} · ${t && t.doc_kind ? t.doc_kind : "document"}` +
                          (d.encounter ? ` · encounter ${d.encounter}` : "") }),
        el("div", { class: "doc-id", text: docId }));
      const text = el("div", { class: "text" });
      sentences.forEach((s, i) => {
        if (i > 0 && s.o !== null && sentences[i - 1].o !== null && s.o > sentences[i - 1].o + sentences[i - 1].ev.length + 1) text.append(el("span", { class: "gap", text: "…" }));
        text.append(markSentence(s.ev, s.o, s.ms));
      });
      art.append(text);
      const rels = byDoc.get(docId) || [];
      if (rels.length) {
        art.append(el("h3", { text: "Relations" }), el("ul", { class: "relations" }, ...rels.map((f) =>
          el("li", { class: f.affirmed ? "affirmed" : "not-affirmed" },
            el("span", { class: `ent t-${f.subject.label} a-${f.subject.assertion}`, text: f.subject.text }),
            el("span", { class: "pred", text: ` —${f.label || f.type}→ ` }),
            el("span", { class: `ent t-${f.object.label} a-${f.object.assertion}`, text: f.object.text }),
            f.affirmed ? null : el("span", { class: "tag", text: " (not affirmed: not a fact of the patient)" }),
            el("q", { class: "evidence", text: f.evidence })))));
      }
      host.append(art);
    }
  }

  async function load() {
    const form = document.getElementById("emr-filters");
    const q = new URLSearchParams();
    for (const c of form.querySelectorAll("input[type=checkbox]:checked")) q.append(c.name, c.value);
    for (const n of ["since", "until"]) if (form.elements[n].value) q.set(n, form.elements[n].value);
    const [emr, facts, timeline] = await Promise.all([
      call("GET", `/v1/patients/${encodeURIComponent(pid)}/emr?${q}`, { what: "patient" }),
      call("GET", `/v1/patients/${encodeURIComponent(pid)}/facts`, { what: "patient" }),
      call("GET", `/v1/patients/${encodeURIComponent(pid)}/timeline`, { what: "patient" })]);
    const bad = [emr, facts, timeline].find((r) => !r.ok);
    if (bad) { say(bad.message); root.classList.add("denied"); document.getElementById("documents").replaceChildren(); return; }
    say("");
    const types = new Set(q.getAll("type")), as = new Set(q.getAll("assertion"));
    const fl = facts.body.facts.filter((f) => (!types.size || types.has(f.subject.label) || types.has(f.object.label))
      && (!as.size || as.has(f.subject.assertion) || as.has(f.object.assertion)));
    const t0 = performance.now();
    render(emr.body, fl, timeline.body.events);
    root.dataset.renderMs = (performance.now() - t0).toFixed(2);  // read by the browser test (displaCy comparison)
    root.dataset.ready = "true";
  }

  document.addEventListener("DOMContentLoaded", () => {
    if (!Desk.session()) return;
    document.getElementById("type-filters").replaceChildren(...TYPES.map((t) =>
      el("label", {}, el("input", { type: "checkbox", name: "type", value: t }), ` ${t} ${ZH[t]}`)));
    document.getElementById("legend").replaceChildren(...TYPES.map((t) => el("mark", { class: `ent t-${t}`, text: `${ZH[t]} ${t}` })),
      el("mark", { class: "ent a-negated", text: "否定 negated" }), el("mark", { class: "ent a-possible", text: "可能 possible" }),
      el("mark", { class: "ent a-historical", text: "既往 historical" }), el("mark", { class: "ent a-family", text: "家族 family" }));
    document.getElementById("emr-filters").addEventListener("submit", (ev) => { ev.preventDefault(); load(); });
    load();
  });
})();

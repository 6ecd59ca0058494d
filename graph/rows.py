"""Records -> the flat property rows the writer sends as ``$rows`` (pure functions, no driver).

Value conventions (Neo4j has no decimal type and no nested maps as properties):

- amounts and numbers are **strings** of the exact decimal (``"12.30"``): a float would lose cents; queries
  use ``toFloat()`` where they need arithmetic;
- dates are ``datetime.date`` (Neo4j ``Date``); a claim's full header is also kept as a JSON string;
- ``content_hash`` is the sha256 of everything a write puts into the graph for a document or a claim, with
  lists sorted and provenance timestamps left out, so equal input hashes equal and the write is skipped.
  A document's hash also covers :data:`RECORD_ROWS_VERSION`: when the rules that turn records into rows
  change, every document is rewritten once on its next ingest (its old contribution subtracted exactly).

Relations of a clinical document go two ways (see :func:`record_rows`):

- every triple whose object is an entity becomes one **statement** of the document, whatever the assertion
  of its arguments: ``(:Document)-[:STATES]->(:Statement)-[:HAS_SUBJECT|HAS_OBJECT]->(:Concept)``, keyed by
  ``statement_id`` (document, type, both spans), with both arguments' text, offsets and assertion, the
  sentence, the evidence span, the confidence and the model;
- only a triple whose subject *and* object are affirmed adds to the concept-level evidence (``asserts``): a
  negated, possible, historical or family argument is no evidence for a fact about the concepts.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from core.predicates import ATTRIBUTE_PREDICATES
from core.records import Assertion, BillField, Claim, ClinicalRecord, Entity, HeaderKey, PaymentKey, Relation
from graph.model import Sentences, concept_key, predicate_type


def _hash(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, ensure_ascii=False, default=str).encode()).hexdigest()


def today() -> date:
    return datetime.now(UTC).date()


def field_value(f: BillField | None) -> str | date | None:
    if f is None or f.value is None:
        return None
    if isinstance(f.value, Decimal):
        return str(f.value)
    return f.value  # str or date


# ---------------------------------------------------------------------------------------------
# clinical records


RECORD_ROWS_VERSION = 2  # 2: only triples with both arguments affirmed count as evidence; statements


@dataclass
class DocRows:
    """What one clinical document writes. ``asserts`` is this document's evidence contribution, one entry
    per relation it asserts with both arguments affirmed: ``(type, s_label, s_key, o_label, o_key, n)``
    with ``n`` the number of distinct sentences asserting it; the writer stores it on the Document
    (``asserts``, JSON strings) so a later version can subtract exactly what this one added.
    ``statements`` are all of the document's triples, affirmed or not, keyed by :func:`statement_id`."""

    doc_id: str
    content_hash: str
    props: dict
    patient_id: str | None
    encounter_id: str | None
    seen: date
    concepts: dict[tuple[str, str], str] = field(default_factory=dict)  # (label, key) -> name
    mentions: list[dict] = field(default_factory=list)  # {"label", "key", "props"}
    asserts: list[tuple[str, str, str, str, str, int]] = field(default_factory=list)
    relation_meta: dict[tuple, tuple[str, str]] = field(default_factory=dict)  # triple -> (label, model)
    statements: list[dict] = field(default_factory=list)  # {"s_label", "s_key", "o_label", "o_key", "props"}
    skipped_attributes: int = 0  # relations whose object is a bare Span (attribute values): not stored

    def stored_asserts(self) -> list[str]:
        return [json.dumps(a, ensure_ascii=False) for a in self.asserts]


def parse_asserts(stored: list[str] | None) -> list[tuple[str, str, str, str, str, int]]:
    return [tuple(json.loads(s)) for s in stored or ()]


def record_hash(record: ClinicalRecord, entities, relations) -> str:
    return _hash({
        "rows_version": RECORD_ROWS_VERSION,
        "record": record.model_dump(mode="json"),
        "entities": sorted(e.model_dump_json() for e in entities),
        "relations": sorted(r.model_dump_json() for r in relations),
    })


def statement_id(doc_id: str, rel_type: str, subject: Entity, obj: Entity) -> str:
    """A statement's key: the document, the relationship type and both arguments' typed spans."""
    return (f"{doc_id}|{rel_type}|{subject.type.value}:{subject.span.start}-{subject.span.end}"
            f"|{obj.type.value}:{obj.span.start}-{obj.span.end}")


def is_affirmed(e: Entity) -> bool:
    return e.assertion is Assertion.affirmed


def record_rows(record: ClinicalRecord, entities: list[Entity] | tuple, relations: list[Relation] | tuple) -> DocRows:
    """The rows of one clinical document: its mentions, its statements (every entity-to-entity triple, with
    both arguments' assertions) and its concept-level evidence (``asserts``: triples whose subject and object
    are both affirmed, counted once per sentence)."""
    sentences = Sentences(record.text)
    rows = DocRows(
        doc_id=record.doc_id, content_hash=record_hash(record, entities, relations),
        props={"kind": "text", "source_uri": record.source_uri, "recorded_on": record.recorded_on,
               "patient_id": record.patient_id, "encounter_id": record.encounter_id,
               "chars": len(record.text)},
        patient_id=record.patient_id, encounter_id=record.encounter_id, seen=record.recorded_on or today())
    seen_mentions: set[tuple] = set()

    def mention(e: Entity) -> tuple[str, str] | None:
        label, key = e.type.value, concept_key(e.span.text)
        if not key:
            return None
        rows.concepts.setdefault((label, key), e.span.text.strip())
        ident = (label, key, e.span.start, e.span.end)
        if ident not in seen_mentions:  # the same span of the same type once, however often it was given
            seen_mentions.add(ident)
            rows.mentions.append({"label": label, "key": key, "props": {
                "start": e.span.start, "end": e.span.end, "text": e.span.text, "assertion": e.assertion.value,
                "confidence": e.confidence, "model": e.model, "sentence": sentences.index(e.span.start),
                "evidence": sentences.context(e.span.start, e.span.end)}})
        return label, key

    for e in entities:
        mention(e)
    sentence_sets: dict[tuple, set[int]] = {}
    statements: dict[str, dict] = {}
    for r in relations:
        if not isinstance(r.object, Entity):  # a value in the text (dose, lab result …): not a graph edge
            if r.predicate not in ATTRIBUTE_PREDICATES:
                predicate_type(r.predicate)  # still refuses predicates outside the allow-list
            rows.skipped_attributes += 1
            continue
        rel_type = predicate_type(r.predicate)  # refuses predicates outside the allow-list
        s, o = mention(r.subject), mention(r.object)  # endpoints are mentions too, given or not
        if s is None or o is None:
            continue
        label = r.label or (r.predicate if r.predicate != rel_type else "")
        affirmed = is_affirmed(r.subject) and is_affirmed(r.object)
        sid = statement_id(rows.doc_id, rel_type, r.subject, r.object)
        if sid not in statements or r.confidence > statements[sid]["props"]["confidence"]:
            statements[sid] = {"s_label": s[0], "s_key": s[1], "o_label": o[0], "o_key": o[1], "props": {
                "statement_id": sid, "doc_id": rows.doc_id, "type": rel_type, "label": label,
                "predicate": r.predicate, "affirmed": affirmed,
                **_argument("subject", r.subject), **_argument("object", r.object),
                "sentence": sentences.index(r.evidence.start), "evidence": r.evidence.text,
                "evidence_start": r.evidence.start, "evidence_end": r.evidence.end,
                "confidence": r.confidence, "model": r.model}}
        if not affirmed:  # kept as the document's statement only: no evidence for the concepts' relation
            continue
        triple = (rel_type, *s, *o)
        sentence_sets.setdefault(triple, set()).add(sentences.index(r.evidence.start))
        rows.relation_meta[triple] = (label, r.model)
    rows.asserts = sorted((*t, len(ss)) for t, ss in sentence_sets.items())
    rows.statements = [statements[k] for k in sorted(statements)]
    return rows


def _argument(role: str, e: Entity) -> dict:
    return {role: e.span.text, f"{role}_type": e.type.value, f"{role}_start": e.span.start,
            f"{role}_end": e.span.end, f"{role}_assertion": e.assertion.value}


# ---------------------------------------------------------------------------------------------
# claims

_HEADER_PROPS = frozenset(k.value for k in HeaderKey)
_PAYMENT_PROPS = frozenset(k.value for k in PaymentKey)


def claim_id_of(claim: Claim) -> str:
    return f"{claim.doc_id}:{claim.page}"


@dataclass
class ClaimRows:
    claim_id: str
    doc_id: str
    patient_id: str | None
    content_hash: str
    props: dict
    items: list[dict]
    matches: list[dict]  # {"claim_id", "line_no", "code", "name", "category", "score", "method"}
    findings: list[dict]


def _field_json(f: BillField) -> dict:
    return {"value": None if f.value is None else str(f.value), "raw": f.raw, "confidence": f.confidence,
            "needs_review": f.needs_review, "note": f.note}


def claim_rows(claim: Claim, patient_id: str | None = None) -> ClaimRows:
    claim_id = claim_id_of(claim)
    content = claim.model_dump(mode="json", exclude={"provenance": {"at"}})
    fields = [*claim.header.values(), *claim.payments.values(),
              *(f for f in (claim.total_figures, claim.total_words) if f is not None)]
    props: dict[str, Any] = {
        "doc_id": claim.doc_id, "page": claim.page, "doc_type": claim.doc_type.value,
        "total": field_value(claim.total_figures), "total_words": field_value(claim.total_words),
        "needs_review": any(f.needs_review for f in fields) or any(
            f.needs_review for it in claim.items for f in (it.name, it.amount)),
        "header_json": json.dumps({k: _field_json(v) for k, v in claim.header.items()}, ensure_ascii=False),
        "model": claim.provenance.model if claim.provenance else None,
        "model_version": claim.provenance.version if claim.provenance else None,
        "patient_id": patient_id,
    }
    # known header and payment keys become properties; any other key stays in header_json only
    props.update({k: field_value(v) for k, v in claim.header.items() if k in _HEADER_PROPS})
    props.update({f"pay_{k}": field_value(v) for k, v in claim.payments.items() if k in _PAYMENT_PROPS})
    items, matches = [], []
    for it in claim.items:
        parts = [f for f in (it.name, it.amount, it.spec, it.unit, it.quantity, it.unit_price, it.item_class,
                             it.tax_rate, it.tax) if f is not None]
        items.append({
            "claim_id": claim_id, "line_no": it.line_no,
            "name": field_value(it.name), "amount": field_value(it.amount), "spec": field_value(it.spec),
            "unit": field_value(it.unit), "quantity": field_value(it.quantity),
            "unit_price": field_value(it.unit_price), "item_class": field_value(it.item_class),
            "tax_rate": field_value(it.tax_rate), "tax": field_value(it.tax),
            "confidence": min(f.confidence for f in parts), "needs_review": any(f.needs_review for f in parts)})
        if it.match is not None:
            m = it.match
            matches.append({"claim_id": claim_id, "line_no": it.line_no, "code": m.code, "name": m.name,
                            "category": m.category, "score": m.score, "method": m.method})
    findings = [{"finding_id": f"{claim_id}:{i}", "claim_id": claim_id, "seq": i, "rule": f.rule, "severity": f.severity,
                 "detail": f.detail} for i, f in enumerate(claim.findings)]
    return ClaimRows(claim_id, claim.doc_id, patient_id, _hash({"claim": content, "patient": patient_id}),
                     props, items, matches, findings)

"""A patient's own facts, apart from the knowledge aggregated over many documents (Neo4j 5 Cypher; runs
unchanged on the embedded ArcadeDB).

The graph holds relations at two levels (see :mod:`graph.writer`):

- **knowledge**: ``(:Concept)-[:TREATED_WITH_DRUG {evidence, first_seen, last_seen}]->(:Concept)``, counted
  over every document's affirmed triples; it says "pneumonia is treated with ceftriaxone" somewhere, for
  someone;
- **this patient's facts**: the statements of the patient's own documents,
  ``(:Patient)-[:HAS_ENCOUNTER]->(:Encounter)-[:HAS_DOCUMENT]->(:Document)-[:STATES]->(:Statement)`` (or
  ``(:Patient)-[:HAS_DOCUMENT]->(:Document)`` when no encounter is known), each with its two concepts
  (``HAS_SUBJECT``, ``HAS_OBJECT``), both arguments' assertions, the sentence and the model: "this patient's
  pneumonia was treated with ceftriaxone, in this encounter, says this sentence of this document".

:func:`patient_facts` reads the second, and beside each fact the first's ``evidence`` for the same
relationship (how many document sentences over the whole graph assert it), so a view can show both without
mixing them. The query starts from ``Patient.pid`` (unique index) and walks out from there.
"""

from __future__ import annotations

from typing import Any

from graph.schema import CONCEPT_LABELS

_FACTS = """
MATCH (p:Patient {pid: $pid})
CALL {
  WITH p MATCH (p)-[:HAS_ENCOUNTER]->(e:Encounter)-[:HAS_DOCUMENT]->(d:Document) RETURN e, d
  UNION
  WITH p MATCH (p)-[:HAS_DOCUMENT]->(d:Document) RETURN null AS e, d
}
MATCH (d)-[:STATES]->(st:Statement)
WHERE st.affirmed = true OR $all = true
MATCH (st)-[:HAS_SUBJECT]->(a:Concept)
MATCH (st)-[:HAS_OBJECT]->(b:Concept)
OPTIONAL MATCH (a)-[x]->(b) WHERE type(x) = st.type
RETURN st.statement_id AS statement_id, st.type AS type, st.label AS label, st.affirmed AS affirmed,
       labels(a) AS subject_labels, a.key AS subject_key, a.name AS subject_name, st.subject AS subject_text,
       st.subject_start AS subject_start, st.subject_end AS subject_end, st.subject_assertion AS subject_assertion,
       labels(b) AS object_labels, b.key AS object_key, b.name AS object_name, st.object AS object_text,
       st.object_start AS object_start, st.object_end AS object_end, st.object_assertion AS object_assertion,
       st.sentence AS sentence, st.evidence AS evidence, st.confidence AS confidence, st.model AS model,
       d.doc_id AS doc_id, e.eid AS encounter_id, coalesce(d.recorded_on, e.date) AS date,
       x.evidence AS knowledge_evidence
"""


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    return value.iso_format() if hasattr(value, "iso_format") else str(value)


def _concept_label(labels: list[str]) -> str | None:
    return next((x for x in labels if x in CONCEPT_LABELS), None)


def patient_facts(driver, pid: str, database: str | None = None, include_non_affirmed: bool = False) -> list[dict]:
    """The relation statements of patient ``pid``'s own documents, newest first (then by document, sentence
    and offsets); an unknown patient has none.

    By default only the patient's facts: statements whose subject and object are both affirmed. With
    ``include_non_affirmed`` also those with a negated, possible, historical or family argument (``affirmed``
    False), e.g. for a reviewer. Each entry: ``statement_id``, ``type`` (``TREATED_WITH_DRUG`` …) and ``label``
    (the source's, ``药物治疗``), ``affirmed``, ``subject`` and ``object`` (each ``{"label", "key", "name",
    "text", "start", "end", "assertion"}``: the concept and the mention in this document), the ``sentence``
    index and its ``evidence`` text, ``confidence``, ``model``, ``doc_id``, ``encounter_id`` (None when the
    document has none), ``date`` (ISO text: the document's ``recorded_on``, else the encounter's ``date``), and
    ``knowledge_evidence``: the concept-level relationship's ``evidence`` over all documents (None where there
    is none, as for a triple no document affirms).
    """
    with driver.session(database=database, default_access_mode="READ") as session:
        rows = session.run(_FACTS, {"pid": pid, "all": bool(include_non_affirmed)}).data()
    out = []
    for r in rows:
        fact = {k: r[k] for k in ("statement_id", "type", "label", "affirmed", "sentence", "evidence", "confidence",
                                  "model", "doc_id", "encounter_id")}
        for role, labels in (("subject", "subject_labels"), ("object", "object_labels")):
            fact[role] = {"label": _concept_label(r[labels]), "key": r[f"{role}_key"], "name": r[f"{role}_name"],
                          "text": r[f"{role}_text"], "start": r[f"{role}_start"], "end": r[f"{role}_end"],
                          "assertion": r[f"{role}_assertion"]}
        fact["date"] = _iso(r["date"])
        fact["knowledge_evidence"] = r["knowledge_evidence"]
        out.append(fact)
    out.sort(key=lambda f: (f["doc_id"], f["sentence"], f["subject"]["start"], f["object"]["start"], f["type"]))
    out.sort(key=lambda f: f["date"] or "", reverse=True)  # stable: newest first, undated last
    return out

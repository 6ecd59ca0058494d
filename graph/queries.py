"""Read queries as plain functions over a ``neo4j`` driver (Neo4j 5 Cypher; run unchanged on ArcadeDB).

Each query starts from an indexed key (``Patient.pid``, a concept's ``key`` under its own label,
``Claim.claim_id``) and walks out from there. Concepts are matched by their specific label (``:Disease``),
never by ``:Concept {key}``: that is the unique index on both servers (see :mod:`graph.schema`). Concept
labels are the only query text built from arguments, and only from the allow-list.

A patient's documents are reached both ways the writer links them:
``(:Patient)-[:HAS_ENCOUNTER]->(:Encounter)-[:HAS_DOCUMENT]->(:Document)`` and, when no encounter is
known, ``(:Patient)-[:HAS_DOCUMENT]->(:Document)``.

On a real Neo4j 5: the EMR view's ``CALL { WITH p ... UNION WITH p ... }`` is the subquery form every 5.x
accepts (5.23+ prefers ``CALL (p) { ... }`` and only warns about the importing ``WITH``); ``EXISTS { MATCH
... }`` and the variable-length ``[:HAS_ENCOUNTER|HAS_DOCUMENT*1..2]`` are plain Neo4j 5. ``PROFILE`` there
should show the EMR view starting with a ``NodeUniqueIndexSeek`` on ``Patient(pid)`` and the cohort with one
on the first concept's label.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from graph.model import check_concept_label, concept_key
from graph.schema import CONCEPT_LABELS

_EMR = """
MATCH (p:Patient {pid: $pid})
CALL {
  WITH p MATCH (p)-[:HAS_ENCOUNTER]->(e:Encounter)-[:HAS_DOCUMENT]->(d:Document) RETURN e, d
  UNION
  WITH p MATCH (p)-[:HAS_DOCUMENT]->(d:Document) RETURN null AS e, d
}
MATCH (d)-[m:MENTIONS]->(c:Concept)
WITH d, e, collect({labels: labels(c), name: c.name, key: c.key, assertion: m.assertion, text: m.text,
                    evidence: m.evidence, start: m.start, end: m.end, sentence: m.sentence,
                    confidence: m.confidence, model: m.model}) AS mentions
RETURN d.doc_id AS doc_id, e.eid AS encounter_id, coalesce(d.recorded_on, e.date) AS date, mentions
"""  # one row per document, not per mention: the driver's work is per row, the largest part of the API's CPU here

_PATIENT = "MATCH (p:Patient {pid: $pid}) RETURN p.pid AS pid"

# documents of patient p, both ways they are linked
_LINKS = "[:HAS_ENCOUNTER|HAS_DOCUMENT*1..2]"
_PATIENT_DOCS = f"(p)-{_LINKS}->(:Document)"


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    return value.iso_format() if hasattr(value, "iso_format") else str(value)


# Rows are plain dicts of the values returned: every query here returns scalars, lists and property maps, so
# Record.data()'s recursive conversion of nodes and paths (meant for interactive use) only cost time (measured:
# about a fifth of the API's CPU on the EMR view).
def _run(driver, database: str | None, query: str, **params) -> list[dict]:
    with driver.session(database=database, default_access_mode="READ") as session:
        result = session.run(query, params)
        keys = result.keys()
        return [dict(zip(keys, record)) for record in result]


def patient_exists(driver, pid: str, database: str | None = None) -> bool:
    """Whether the graph holds the patient (a patient with no document yet still exists)."""
    return bool(_run(driver, database, _PATIENT, pid=pid))


def emr_view(driver, pid: str, database: str | None = None) -> dict:
    """A patient's post-structured record: every mention in the patient's documents, grouped by concept
    type (``Disease``, ``Symptom``, ``Drug``, ``Procedure``, ``Exam``, ``LabTest``, ...; every type is a key,
    possibly with an empty list). An entry holds the concept's name and key, the mention's assertion,
    text, evidence (its sentence), offsets, sentence index, confidence and model, the document and
    encounter it came from, and the date (the document's ``recorded_on``, else the encounter's ``date``) as
    ISO text. Entries are newest first, then by document and offset. ``found`` is False for an unknown
    patient."""
    rows = _run(driver, database, _EMR, pid=pid)
    return _emr_grouped(pid, rows, bool(rows) or patient_exists(driver, pid, database))


def _concept_params(concepts: Iterable[tuple[str, str]], prefix: str) -> list[tuple[str, str, str]]:
    out = []
    for i, (label, name) in enumerate(concepts):
        key = concept_key(name)
        if not key:
            raise ValueError(f"empty concept name for {label}")
        out.append((check_concept_label(label), f"{prefix}{i}", key))
    return out


def cohort_query(with_concepts: Sequence[tuple[str, str]], without_concepts: Sequence[tuple[str, str]] = ()
                 ) -> tuple[str, dict]:
    """The Cypher and parameters of :func:`cohort`."""
    wanted, unwanted = _concept_params(with_concepts, "w"), _concept_params(without_concepts, "x")
    if not wanted:
        raise ValueError("a cohort needs at least one concept to include")
    (label0, param0, _), rest = wanted[0], wanted[1:]
    # anchored on the first concept's index, then each patient is checked against the others. Every clause
    # names its mention variable apart (m_w0, m_x1, ...): ArcadeDB treats a name reused inside EXISTS as
    # still bound although an earlier WITH dropped it (Neo4j does not).
    lines = [f"MATCH (:{label0} {{key: ${param0}}})<-[m_{param0}:MENTIONS]-(:Document)<-{_LINKS}-(p:Patient)",
             f"WHERE m_{param0}.assertion = 'affirmed'", "WITH DISTINCT p"]
    conditions = [f"{'' if keep else 'NOT '}EXISTS {{ MATCH {_PATIENT_DOCS}-[m_{param}:MENTIONS]->"
                  f"(:{label} {{key: ${param}}}) WHERE m_{param}.assertion = 'affirmed' }}"
                  for keep, (label, param, _) in [(True, c) for c in rest] + [(False, c) for c in unwanted]]
    if conditions:
        lines.append("WHERE " + " AND ".join(conditions))
    lines.append("RETURN p.pid AS pid ORDER BY pid")
    return "\n".join(lines), {param: key for _, param, key in wanted + unwanted}


def cohort(driver, with_concepts: Sequence[tuple[str, str]], without_concepts: Sequence[tuple[str, str]] = (),
           database: str | None = None) -> list[str]:
    """Patient ids (sorted) with an affirmed mention of every concept in ``with_concepts`` and none of
    ``without_concepts``; concepts are ``(type, name)``, e.g. ``("Disease", "高血压")``, the name
    normalised as the writer does (:func:`graph.model.concept_key`). Negated, possible, historical and
    family mentions count neither way."""
    query, params = cohort_query(with_concepts, without_concepts)
    return [r["pid"] for r in _run(driver, database, query, **params)]


_CLAIM = """
MATCH (c:Claim {claim_id: $claim_id})
OPTIONAL MATCH (c)-[:BILLED_TO]->(p:Patient)
RETURN properties(c) AS claim, p.pid AS pid
"""
_CLAIM_ITEMS = """
MATCH (c:Claim {claim_id: $claim_id})-[:HAS_ITEM]->(i:LineItem)
OPTIONAL MATCH (i)-[m:MATCHES]->(ci:CatalogItem)
RETURN properties(i) AS item, ci.code AS code, ci.name AS name, ci.category AS category,
       m.score AS score, m.method AS method
ORDER BY i.line_no
"""
_CLAIM_FINDINGS = """
MATCH (c:Claim {claim_id: $claim_id})-[:HAS_FINDING]->(f:Finding)
RETURN f.finding_id AS finding_id, f.rule AS rule, f.severity AS severity, f.detail AS detail
ORDER BY f.seq
"""


def claim_view(driver, claim_id: str, database: str | None = None) -> dict | None:
    """A claim with its properties, the patient it is billed to, its line items in line order (each with
    its catalogue ``match`` or None) and its findings; None for an unknown claim. Amounts are the exact
    decimal strings the writer stored."""
    head = _run(driver, database, _CLAIM, claim_id=claim_id)
    if not head:
        return None
    claim = {k: _iso(v) if hasattr(v, "iso_format") else v for k, v in head[0]["claim"].items()
             if k not in ("asserts", "_lock")}
    items = []
    for r in _run(driver, database, _CLAIM_ITEMS, claim_id=claim_id):
        item = dict(r["item"])
        item["match"] = None if r["code"] is None else {
            k: r[k] for k in ("code", "name", "category", "score", "method")}
        items.append(item)
    findings = _run(driver, database, _CLAIM_FINDINGS, claim_id=claim_id)
    return {"claim_id": claim_id, "pid": head[0]["pid"], "claim": claim, "items": items, "findings": findings}


# --- added for the HTTP API (api/): timeline, concept neighbourhood, cohort window and aggregates ---------------

_TIMELINE_DOCS = """
MATCH (p:Patient {pid: $pid})
CALL {
  WITH p MATCH (p)-[:HAS_ENCOUNTER]->(e:Encounter)-[:HAS_DOCUMENT]->(d:Document) RETURN e, d
  UNION
  WITH p MATCH (p)-[:HAS_DOCUMENT]->(d:Document) RETURN null AS e, d
}
OPTIONAL MATCH (d)-[m:MENTIONS]->(:Concept)
RETURN e.eid AS encounter_id, e.date AS encounter_date, d.doc_id AS doc_id, d.kind AS kind,
       d.recorded_on AS recorded_on, count(m) AS mentions
"""
_TIMELINE_CLAIMS = """
MATCH (p:Patient {pid: $pid})<-[:BILLED_TO]-(c:Claim)
RETURN c.claim_id AS claim_id, c.doc_id AS doc_id, c.issue_date AS issue_date, c.doc_type AS doc_type
"""


def timeline(driver, pid: str, database: str | None = None) -> dict:
    """A patient's encounters, documents and billed claims in time order (undated last): each event has
    ``date`` (ISO text or None), ``kind`` (``document`` or ``claim``), ``encounter_id``, ``doc_id``, and for
    documents the number of mentions, for claims the ``claim_id`` and ``doc_type``. ``found`` is False for an
    unknown patient."""
    docs = _run(driver, database, _TIMELINE_DOCS, pid=pid)
    claims = _run(driver, database, _TIMELINE_CLAIMS, pid=pid)
    found = bool(docs or claims) or patient_exists(driver, pid, database)
    events = [{"kind": "document", "date": _iso(r["recorded_on"] or r["encounter_date"]),
               "encounter_id": r["encounter_id"], "doc_id": r["doc_id"], "doc_kind": r["kind"],
               "mentions": r["mentions"], "claim_id": None, "doc_type": None} for r in docs]
    events += [{"kind": "claim", "date": _iso(r["issue_date"]), "encounter_id": None, "doc_id": r["doc_id"],
                "doc_kind": None, "mentions": None, "claim_id": r["claim_id"], "doc_type": r["doc_type"]}
               for r in claims]
    events.sort(key=lambda e: (e["date"] is None, e["date"] or "", e["encounter_id"] or "", e["doc_id"] or ""))
    return {"pid": pid, "found": found, "events": events}


def concept_neighbourhood(driver, label: str, name: str, database: str | None = None) -> dict:
    """A concept, the concepts it is related to (both directions) with each relation's predicate, source
    label and evidence count, and the number of documents mentioning it (affirmed mentions only). ``found`` is
    False when the concept is not in the graph. The label comes from the allow-list; name and key are
    parameters."""
    label, key = check_concept_label(label), concept_key(name)
    head = _run(driver, database, f"MATCH (c:{label} {{key: $key}}) RETURN c.name AS name", key=key)
    if not head:
        return {"type": label, "key": key, "name": name, "found": False, "documents": 0, "relations": []}
    rels = _run(driver, database, f"""
MATCH (c:{label} {{key: $key}})-[r]->(o:Concept) WHERE type(r) <> 'MENTIONS'
RETURN 'out' AS direction, type(r) AS predicate, r.label AS label, labels(o) AS labels, o.name AS name,
       o.key AS key, r.evidence AS evidence
UNION ALL
MATCH (c:{label} {{key: $key}})<-[r]-(o:Concept) WHERE type(r) <> 'MENTIONS'
RETURN 'in' AS direction, type(r) AS predicate, r.label AS label, labels(o) AS labels, o.name AS name,
       o.key AS key, r.evidence AS evidence
""", key=key)
    docs = _run(driver, database, f"MATCH (c:{label} {{key: $key}})<-[m:MENTIONS]-(d:Document) "
                                  "WHERE m.assertion = 'affirmed' RETURN count(DISTINCT d) AS n", key=key)
    relations = []
    for r in rels:
        other = next((x for x in r.pop("labels") if x in CONCEPT_LABELS), None)
        relations.append({**r, "type": other, "evidence": r["evidence"] or 0})
    relations.sort(key=lambda r: (-r["evidence"], r["predicate"], r["key"] or ""))
    return {"type": label, "key": key, "name": head[0]["name"], "found": True, "documents": docs[0]["n"],
            "relations": relations}


def cohort_in_window(driver, pids: Sequence[str], with_concepts: Sequence[tuple[str, str]], since=None, until=None,
                     database: str | None = None) -> list[str]:
    """Of ``pids`` (a :func:`cohort`), those with an affirmed mention of every concept of ``with_concepts`` in
    a document dated (its ``recorded_on``, else its encounter's ``date``) within ``[since, until]`` (either may
    be None: open). Undated documents are outside every window."""
    keep = set(pids)
    for label, param, key in _concept_params(with_concepts, "w"):
        rows = _run(driver, database, f"""
UNWIND $pids AS pid MATCH (p:Patient {{pid: pid}})
CALL {{
  WITH p MATCH (p)-[:HAS_ENCOUNTER]->(e:Encounter)-[:HAS_DOCUMENT]->(d:Document) RETURN d, e.date AS edate
  UNION
  WITH p MATCH (p)-[:HAS_DOCUMENT]->(d:Document) RETURN d, null AS edate
}}
MATCH (d)-[m:MENTIONS]->(:{label} {{key: $key}}) WHERE m.assertion = 'affirmed'
WITH p, coalesce(d.recorded_on, edate) AS day
WHERE day IS NOT NULL AND ($since IS NULL OR day >= $since) AND ($until IS NULL OR day <= $until)
RETURN DISTINCT p.pid AS pid
""", pids=sorted(keep), key=key, since=since, until=until)
        keep &= {r["pid"] for r in rows}
        if not keep:
            break
    return sorted(keep)


def cohort_aggregates(driver, pids: Sequence[str], top: int = 10, min_patients: int = 1,
                      database: str | None = None) -> dict:
    """Aggregates of a cohort: patients by ``sex`` and by ``birth_year`` (Patient properties; ``None`` where
    unknown), and the concepts most often affirmed among them (``top``, each with the number of distinct
    patients, at least ``min_patients``)."""
    people = _run(driver, database, "UNWIND $pids AS pid MATCH (p:Patient {pid: pid}) "
                                    "RETURN p.sex AS sex, p.birth_year AS birth_year", pids=list(pids))
    concepts = _run(driver, database, f"""
UNWIND $pids AS pid MATCH (p:Patient {{pid: pid}})-{_LINKS}->(:Document)-[m:MENTIONS]->(c:Concept)
WHERE m.assertion = 'affirmed'
WITH c, count(DISTINCT p) AS patients WHERE patients >= $min_patients
RETURN labels(c) AS labels, c.name AS name, c.key AS key, patients ORDER BY patients DESC, key LIMIT $top
""", pids=list(pids), min_patients=min_patients, top=top)
    for r in concepts:
        r["type"] = next((x for x in r.pop("labels") if x in CONCEPT_LABELS), None)
    return {"people": people, "concepts": concepts}


def _emr_grouped(pid: str, rows: list[dict], found: bool) -> dict:
    """:func:`emr_view`'s answer built from its query's rows (also :func:`emr_view_async`'s)."""
    concepts: dict[str, list[dict]] = {label: [] for label in CONCEPT_LABELS}
    for doc in rows:
        where = {"doc_id": doc["doc_id"], "encounter_id": doc["encounter_id"], "date": _iso(doc["date"])}
        for m in doc["mentions"]:
            label = next((x for x in m.pop("labels") if x in concepts), None)
            if label is not None:
                concepts[label].append(m | where)
    for entries in concepts.values():
        entries.sort(key=lambda e: (e["doc_id"], e["start"], e["end"]))
        entries.sort(key=lambda e: e["date"] or "", reverse=True)  # stable: newest first, undated last
    return {"pid": pid, "found": found, "concepts": concepts}


async def _run_async(driver, database: str | None, query: str, **params) -> list[dict]:
    async with driver.session(database=database, default_access_mode="READ") as session:
        result = await session.run(query, params)
        keys = result.keys()
        return [dict(zip(keys, record)) async for record in result]


async def emr_view_async(driver, pid: str, database: str | None = None) -> dict:
    """:func:`emr_view` over a ``neo4j.AsyncDriver`` (the HTTP API awaits it: no thread per request)."""
    rows = await _run_async(driver, database, _EMR, pid=pid)
    found = bool(rows) or bool(await _run_async(driver, database, _PATIENT, pid=pid))
    return _emr_grouped(pid, rows, found)

"""Relations from negated, possible, historical or family mentions stay at the document level (issue 22, part 3).

A triple counts as evidence for a concept-level relationship only when its subject and object are both affirmed;
every triple is kept as its document's ``Statement`` with both assertions. Graph tests run against the real
embedded server (session fixture ``graph_db``) and use ids of their own (``uid``)."""

from __future__ import annotations

import json
import uuid
from datetime import date
from pathlib import Path

import pytest

from core.records import Assertion, ClinicalRecord, Entity, EntityType, Relation, Span
from graph.model import CONCEPT_PREDICATES, Sentences, check_concept_label, predicate_type
from graph.rows import record_rows, statement_id

ROOT = Path(__file__).resolve().parents[1]
NON_AFFIRMED = [a.value for a in Assertion if a is not Assertion.affirmed]


def ent(text: str, surface: str, type_: str, assertion: str = "affirmed", nth: int = 0) -> Entity:
    start = -1
    for _ in range(nth + 1):
        start = text.index(surface, start + 1)
    return Entity(span=Span(start=start, end=start + len(surface), text=surface), type=EntityType(type_),
                  assertion=assertion, confidence=0.9, model="test-ner")


def rel(text: str, subj: Entity, predicate: str, obj: Entity, label: str = "", confidence: float = 0.8) -> Relation:
    s = Sentences(text)
    a, b = s.bounds(s.index(obj.span.start))
    return Relation(subject=subj, predicate=predicate, label=label, object=obj, confidence=confidence,
                    evidence=Span(start=a, end=b, text=text[a:b]), model="test-re")


# --- rows (no server) ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("role", ["subject", "object"])
@pytest.mark.parametrize("assertion", NON_AFFIRMED)
def test_a_non_affirmed_argument_is_a_statement_and_no_evidence(assertion, role):
    text = "肺炎予头孢曲松治疗。"
    d, drug = ent(text, "肺炎", "Disease"), ent(text, "头孢曲松", "Drug")
    if role == "subject":
        d = d.model_copy(update={"assertion": Assertion(assertion)})
    else:
        drug = drug.model_copy(update={"assertion": Assertion(assertion)})
    rows = record_rows(ClinicalRecord.of(text, doc_id="d1"), [d, drug], [rel(text, d, "药物治疗", drug)])
    assert rows.asserts == []
    [st] = rows.statements
    p = st["props"]
    assert (p["type"], p["label"], p["affirmed"], p["subject_assertion"], p["object_assertion"]) == (
        "TREATED_WITH_DRUG", "药物治疗", False, d.assertion.value, drug.assertion.value)
    assert (p["subject"], p["subject_start"], p["subject_end"], p["object"], p["object_start"], p["sentence"]) == (
        "肺炎", 0, 2, "头孢曲松", 3, 0)
    assert p["statement_id"] == "d1|TREATED_WITH_DRUG|Disease:0-2|Drug:3-7" and p["evidence"] == text


def test_only_affirmed_sentences_count():
    text = "肺炎予头孢曲松治疗。父亲肺炎予头孢曲松治疗。肺炎予头孢曲松治疗。"
    e = [ent(text, "肺炎", "Disease", nth=i) for i in range(3)]
    e[1] = e[1].model_copy(update={"assertion": Assertion.family})
    drugs = [ent(text, "头孢曲松", "Drug", nth=i) for i in range(3)]
    rows = record_rows(ClinicalRecord.of(text, doc_id="d2"), [*e, *drugs],
                       [rel(text, s, "TREATED_WITH_DRUG", o) for s, o in zip(e, drugs)])
    assert rows.asserts == [("TREATED_WITH_DRUG", "Disease", "肺炎", "Drug", "头孢曲松", 2)]
    assert [s["props"]["affirmed"] for s in rows.statements] == [True, False, True]


def test_the_same_triple_twice_is_one_statement_the_surer_one():
    text = "肺炎予头孢曲松治疗。"
    d, drug = ent(text, "肺炎", "Disease"), ent(text, "头孢曲松", "Drug")
    rows = record_rows(ClinicalRecord.of(text, doc_id="d3"), [d, drug],
                       [rel(text, d, "药物治疗", drug, confidence=0.6),
                        rel(text, d, "TREATED_WITH_DRUG", drug, "药物治疗", 0.9)])
    assert len(rows.statements) == 1 and rows.statements[0]["props"]["confidence"] == 0.9


def test_relation_arguments_outside_the_ner_entities_get_the_rules_assertion():
    """The relation model's own argument 糖尿病 inside 父亲患有2型糖尿病 is a family mention (it was affirmed)."""
    from relations.extract import Extraction
    from relations.stage import relate

    text = "既往体健，否认糖尿病史。家族史：父亲患有2型糖尿病。C反应蛋白56mg/L。"
    ner = [ent(text, "糖尿病", "Disease", "negated"), ent(text, "2型糖尿病", "Disease", "family"),
           ent(text, "C反应蛋白", "LabTest")]
    inner = ent(text, "糖尿病", "Disease", nth=1)  # no NER entity has this span
    crp = Entity(span=ner[2].span, type=EntityType.lab_test, model="re")
    extraction = Extraction([inner, crp], [rel(text, inner, "DIAGNOSED_BY_LAB_TEST", crp)])
    entities, relations = relate(text, ner, extraction, link_attributes=lambda *_: [])
    [r] = relations
    assert r.subject.assertion is Assertion.family and r.subject.span == inner.span
    assert r.object is ner[2]  # an argument with an NER entity's span is that entity
    assert [e.assertion.value for e in entities] == ["negated", "family", "family", "affirmed"]


# --- the graph ------------------------------------------------------------------------------------------------

neo4j = pytest.importorskip("neo4j")


@pytest.fixture
def uid():
    return uuid.uuid4().hex[:8]


@pytest.fixture
def writer(graph_db):
    from graph.writer import GraphWriter

    return GraphWriter(graph_db.driver, graph_db.database, batch_size=200)


def q(graph_db, query, **params):
    with graph_db.driver.session(database=graph_db.database) as s:
        return s.run(query, params).data()


def counts(graph_db) -> tuple[int, int]:
    return (q(graph_db, "MATCH (n) RETURN count(n) AS n")[0]["n"],
            q(graph_db, "MATCH ()-[r]->() RETURN count(r) AS n")[0]["n"])


def evidence(graph_db, s_label, s, rel_type, o_label, o):
    rows = q(graph_db, f"MATCH (:{s_label} {{key: $s}})-[x:{rel_type}]->(:{o_label} {{key: $o}}) "
             "RETURN x.evidence AS n", s=s, o=o)
    return rows[0]["n"] if rows else None


def statements(graph_db, doc_id):
    return q(graph_db, "MATCH (d:Document {doc_id: $d})-[:STATES]->(st:Statement) "
             "MATCH (st)-[:HAS_SUBJECT]->(a) MATCH (st)-[:HAS_OBJECT]->(b) "
             "RETURN st.type AS type, a.key AS s, b.key AS o, st.subject_assertion AS sa, "
             "st.object_assertion AS oa, st.affirmed AS affirmed, st.sentence AS sentence, st.model AS model "
             "ORDER BY st.statement_id", d=doc_id)


def record(uid, n, text, **kw):
    return ClinicalRecord.of(text, doc_id=f"doc-{uid}-{n}", **kw)


@pytest.mark.slow
@pytest.mark.parametrize("role", ["subject", "object"])
@pytest.mark.parametrize("assertion", NON_AFFIRMED)
def test_non_affirmed_never_creates_or_increments_a_concept_edge(writer, graph_db, uid, assertion, role):
    dis, sym = f"病{uid}", f"症{uid}"
    text = f"{dis}表现为{sym}。"

    def doc(n, a):
        d, s = ent(text, dis, "Disease"), ent(text, sym, "Symptom")
        if role == "subject":
            d = d.model_copy(update={"assertion": Assertion(a)})
        else:
            s = s.model_copy(update={"assertion": Assertion(a)})
        return record(uid, n, text + "。" * n), [d, s], [rel(text, d, "临床表现", s)]

    writer.write_records([doc(1, assertion)])  # alone: no concept-level edge
    assert evidence(graph_db, "Disease", dis, "HAS_MANIFESTATION", "Symptom", sym) is None
    [st] = statements(graph_db, f"doc-{uid}-1")
    assert st == {"type": "HAS_MANIFESTATION", "s": dis, "o": sym, "affirmed": False, "sentence": 0,
                  "model": "test-re", "sa": assertion if role == "subject" else "affirmed",
                  "oa": assertion if role == "object" else "affirmed"}
    writer.write_records([doc(2, "affirmed")])  # an affirmed one creates it
    assert evidence(graph_db, "Disease", dis, "HAS_MANIFESTATION", "Symptom", sym) == 1
    writer.write_records([doc(3, assertion), doc(4, assertion)])  # more non-affirmed ones add nothing
    assert evidence(graph_db, "Disease", dis, "HAS_MANIFESTATION", "Symptom", sym) == 1
    assert len(statements(graph_db, f"doc-{uid}-4")) == 1


@pytest.mark.slow
def test_reingest_is_idempotent_and_a_new_version_moves_the_evidence(writer, graph_db, uid):
    dis, drug = f"肺炎{uid}", f"头孢{uid}"
    text = f"{dis}予{drug}治疗。"
    d, x = ent(text, dis, "Disease"), ent(text, drug, "Drug")
    v1 = (record(uid, 1, text, patient_id=f"p-{uid}"), [d, x], [rel(text, d, "药物治疗", x)])
    writer.write_records([v1])
    state = counts(graph_db)
    writer.write_records([v1])
    writer.write_records([v1, v1])
    assert counts(graph_db) == state
    assert evidence(graph_db, "Disease", dis, "TREATED_WITH_DRUG", "Drug", drug) == 1
    assert len(statements(graph_db, f"doc-{uid}-1")) == 1
    # version 2 says the same with a hedged disease: the evidence goes, the statement stays (hedged), once
    text2 = f"考虑{dis}，予{drug}治疗。"
    d2, x2 = ent(text2, dis, "Disease", "possible"), ent(text2, drug, "Drug")
    v2 = (record(uid, 1, text2, patient_id=f"p-{uid}"), [d2, x2], [rel(text2, d2, "药物治疗", x2)])
    writer.write_records([v2])
    assert evidence(graph_db, "Disease", dis, "TREATED_WITH_DRUG", "Drug", drug) is None
    assert [(s["sa"], s["affirmed"]) for s in statements(graph_db, f"doc-{uid}-1")] == [("possible", False)]
    state2 = counts(graph_db)
    writer.write_records([v2])
    assert counts(graph_db) == state2
    writer.write_records([v1])  # back to version 1: as after the first write
    assert evidence(graph_db, "Disease", dis, "TREATED_WITH_DRUG", "Drug", drug) == 1
    assert counts(graph_db) == state
    # a version without relations drops the statement and its concepts go with the mentions
    writer.write_records([(record(uid, 1, "无。", patient_id=f"p-{uid}"), [], [])])
    assert statements(graph_db, f"doc-{uid}-1") == []
    assert q(graph_db, "MATCH (s:Statement) WHERE s.doc_id = $d RETURN count(s) AS n", d=f"doc-{uid}-1") == [{"n": 0}]
    assert q(graph_db, "MATCH (c:Drug {key: $k}) RETURN count(c) AS n", k=drug) == [{"n": 0}]


@pytest.mark.slow
def test_a_document_written_under_the_old_rule_is_corrected_by_its_reingest(writer, graph_db, uid, monkeypatch):
    """Documents written before this rule counted their family triple; the rows version is part of the content
    hash, so ingesting the same record again rewrites it once and subtracts exactly what it had added."""
    import graph.rows

    dis, sym = f"病{uid}", f"症{uid}"
    text = f"父亲{dis}表现为{sym}。"
    d, s = ent(text, dis, "Disease", "family"), ent(text, sym, "Symptom")
    item = (record(uid, 1, text), [d, s], [rel(text, d, "临床表现", s)])
    with monkeypatch.context() as m:  # the previous rule: every triple counts, no statements
        m.setattr(graph.rows, "RECORD_ROWS_VERSION", 1)
        m.setattr(graph.rows, "is_affirmed", lambda e: True)
        writer.write_records([item])
    assert evidence(graph_db, "Disease", dis, "HAS_MANIFESTATION", "Symptom", sym) == 1
    writer.write_records([item])
    assert evidence(graph_db, "Disease", dis, "HAS_MANIFESTATION", "Symptom", sym) is None
    assert [(st["sa"], st["affirmed"]) for st in statements(graph_db, f"doc-{uid}-1")] == [("family", False)]
    state = counts(graph_db)
    writer.write_records([item])
    assert counts(graph_db) == state


@pytest.mark.slow
def test_patient_facts_are_the_patients_own_affirmed_statements(writer, graph_db, uid):
    from graph.facts import patient_facts

    pid, other = f"p-{uid}", f"q-{uid}"
    dis, drug = f"肺炎{uid}", f"头孢曲松{uid}"
    t1 = f"诊断{dis}，予{drug}治疗。父亲{dis}曾用{drug}。"
    e1 = [ent(t1, dis, "Disease"), ent(t1, drug, "Drug"),
          ent(t1, dis, "Disease", "family", 1), ent(t1, drug, "Drug", nth=1)]
    t2 = f"{dis}予{drug}治疗。"
    e2 = [ent(t2, dis, "Disease"), ent(t2, drug, "Drug")]
    t3 = f"复查：{dis}，继续{drug}。"
    e3 = [ent(t3, dis, "Disease"), ent(t3, drug, "Drug")]
    writer.write_records([
        (record(uid, 1, t1, patient_id=pid, encounter_id=f"e-{uid}", recorded_on=date(2026, 3, 2)), e1,
         [rel(t1, e1[0], "药物治疗", e1[1]), rel(t1, e1[2], "药物治疗", e1[3])]),
        (record(uid, 3, t3, patient_id=pid, recorded_on=date(2026, 3, 9)), e3, [rel(t3, e3[0], "药物治疗", e3[1])]),
        (record(uid, 2, t2, patient_id=other, encounter_id=f"f-{uid}"), e2, [rel(t2, e2[0], "药物治疗", e2[1])]),
    ])
    facts = patient_facts(graph_db.driver, pid, graph_db.database)
    assert [(f["doc_id"], f["encounter_id"], f["date"], f["sentence"]) for f in facts] == [
        (f"doc-{uid}-3", None, "2026-03-09", 0), (f"doc-{uid}-1", f"e-{uid}", "2026-03-02", 0)]
    f = facts[1]
    assert (f["type"], f["label"], f["affirmed"]) == ("TREATED_WITH_DRUG", "药物治疗", True)
    assert f["knowledge_evidence"] == 3  # the concept-level edge: this patient's two documents and the other's
    assert f["subject"] == {"label": "Disease", "key": dis, "name": dis, "text": dis, "start": 2, "end": 2 + len(dis),
                            "assertion": "affirmed"}
    assert f["object"]["label"] == "Drug" and f["object"]["key"] == drug.lower() and f["evidence"].startswith("诊断")
    everything = patient_facts(graph_db.driver, pid, graph_db.database, include_non_affirmed=True)
    assert len(everything) == 3
    [family] = [x for x in everything if not x["affirmed"]]
    assert family["subject"]["assertion"] == "family" and family["sentence"] == 1
    assert patient_facts(graph_db.driver, f"nobody-{uid}", graph_db.database) == []
    assert [x["doc_id"] for x in patient_facts(graph_db.driver, other, graph_db.database)] == [f"doc-{uid}-2"]


# --- the main job's sample records ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def samples_related():
    """samples/records.jsonl through the real NER, assertion rules and relation stage (shipped models)."""
    from relations.stage import RelationStage

    recs = [json.loads(line) for line in (ROOT / "samples" / "records.jsonl").read_text(encoding="utf-8").splitlines()
            if line.strip()]
    stage = RelationStage.load()
    return recs, stage([r["text"] for r in recs])


@pytest.mark.slow
def test_no_concept_edge_of_the_samples_rests_on_non_affirmed_mentions(samples_related, writer, graph_db, uid):
    recs, related = samples_related
    items = [(ClinicalRecord.of(r["text"], doc_id=f"{uid}-{r['doc_id']}", patient_id=f"{uid}-{r['patient_id']}",
                                encounter_id=f"{uid}-{r['encounter_id']}", recorded_on=date.fromisoformat(r["date"])),
              ents, rels) for r, (ents, rels) in zip(recs, related)]
    triples = [r for _, _, rels in items for r in rels if isinstance(r.object, Entity)]
    non_affirmed = [r for r in triples if Assertion.affirmed is not r.subject.assertion
                    or Assertion.affirmed is not r.object.assertion]
    assert triples and non_affirmed, "the samples hold triples with non-affirmed arguments (否认糖尿病史, 父亲患有…)"
    writer.write_records(items)
    doc_ids = [rec.doc_id for rec, _, _ in items]
    # every concept-level edge between two concepts these documents state something about is backed by affirmed
    # statements, and its evidence is their number of (document, sentence) pairs over the whole graph
    edges = q(graph_db, "MATCH (d:Document)-[:STATES]->(st:Statement) WHERE d.doc_id IN $ids "
              "MATCH (st)-[:HAS_SUBJECT]->(a) MATCH (st)-[:HAS_OBJECT]->(b) "
              "MATCH (a)-[x]->(b) WHERE type(x) IN $types "
              "RETURN DISTINCT type(x) AS type, a.key AS s, b.key AS o, x.evidence AS evidence, "
              "labels(a) AS sl, labels(b) AS ol", ids=doc_ids, types=list(CONCEPT_PREDICATES))
    assert edges
    for e in edges:
        sl, ol = (check_concept_label(next(x for x in e[k] if x != "Concept")) for k in ("sl", "ol"))
        support = q(graph_db, f"MATCH (a:{sl} {{key: $s}})<-[:HAS_SUBJECT]-(st:Statement)-[:HAS_OBJECT]->"
                    f"(b:{ol} {{key: $o}}) WHERE st.type = $t AND st.affirmed = true "
                    "MATCH (d:Document)-[:STATES]->(st) RETURN count(DISTINCT [d.doc_id, st.sentence]) AS n",
                    t=e["type"], s=e["s"], o=e["o"])
        assert support[0]["n"] == e["evidence"] > 0, e
    # the examples are kept at the document level, with their assertions, and count for nothing
    stated = [s for d in doc_ids for s in statements(graph_db, d)]
    family = [s for s in stated if s["sa"] == "family" and "糖尿病" in s["s"]]
    assert family and not any(s["affirmed"] for s in family)
    assert len(stated) == len({statement_id(rec.doc_id, predicate_type(r.predicate), r.subject, r.object)
                               for rec, _, rels in items for r in rels if isinstance(r.object, Entity)})

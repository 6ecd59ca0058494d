"""Read queries on a small hand-built graph, written by the real writer into the real server (``graph_db``)."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal

import pytest

from core.records import (
    BillField,
    CatalogMatch,
    Claim,
    ClinicalRecord,
    DocumentType,
    Entity,
    EntityType,
    Finding,
    LineItem,
    Relation,
    Span,
)
from graph.queries import claim_view, cohort, cohort_query, emr_view
from graph.writer import GraphWriter

pytestmark = pytest.mark.slow


def ent(text: str, surface: str, type_: str, assertion: str = "affirmed") -> Entity:
    start = text.index(surface)
    return Entity(span=Span(start=start, end=start + len(surface), text=surface), type=EntityType(type_),
                  assertion=assertion, confidence=0.9, model="test-ner")


@pytest.fixture(scope="module")
def world(graph_db):
    """Three patients of this module (ids unique to it):

    - A: encounter 1 with two documents (2024-01-02, 2024-03-04): 高血压 affirmed, 头痛 negated, 硝苯地平,
      a head CT; a claim billed to A.
    - B: a document with no encounter (no date): 高血压 affirmed, 糖尿病 affirmed.
    - C: 高血压 negated only, 糖尿病 affirmed.
    """
    u = uuid.uuid4().hex[:8]
    pa, pb, pc = f"A-{u}", f"B-{u}", f"C-{u}"
    t1 = "主诉：头晕。诊断高血压，无头痛。"
    t2 = "予硝苯地平降压。头颅CT未见异常。"
    t3 = "高血压病史，2型糖尿病。"
    t4 = "否认高血压。糖尿病十年。"
    hyp1 = ent(t1, "高血压", "Disease")
    docs = [
        (ClinicalRecord(doc_id=f"a1-{u}", text=t1, patient_id=pa, encounter_id=f"e1-{u}", recorded_on=date(2024, 1, 2)),
         [ent(t1, "头晕", "Symptom"), hyp1, ent(t1, "头痛", "Symptom", "negated")],
         [Relation(subject=hyp1, predicate="临床表现", object=ent(t1, "头晕", "Symptom"),
                   evidence=Span(start=0, end=6, text=t1[:6]))]),
        (ClinicalRecord(doc_id=f"a2-{u}", text=t2, patient_id=pa, encounter_id=f"e1-{u}", recorded_on=date(2024, 3, 4)),
         [ent(t2, "硝苯地平", "Drug"), ent(t2, "头颅CT", "Exam")], []),
        (ClinicalRecord(doc_id=f"b1-{u}", text=t3, patient_id=pb),
         [ent(t3, "高血压", "Disease", "historical"), ent(t3, "高血压病史", "Disease"), ent(t3, "2型糖尿病", "Disease")],
         []),
        (ClinicalRecord(doc_id=f"c1-{u}", text=t4, patient_id=pc, encounter_id=f"ec-{u}"),
         [ent(t4, "高血压", "Disease", "negated"), ent(t4, "糖尿病", "Disease")], []),
    ]
    # B's "高血压" is historical; its affirmed disease is "高血压病史" -- so B is not in the 高血压 cohort
    writer = GraphWriter(graph_db.driver, graph_db.database)
    writer.write_records(docs)
    f = BillField
    claim = Claim(
        doc_id=f"bill-{u}", doc_type=DocumentType.inpatient_e_receipt,
        header={"bill_no": f(name="bill_no", value="0099"), "issue_date": f(name="issue_date", value=date(2024, 3, 5))},
        items=(LineItem(line_no=1, name=f(name="n", value="西药费"), amount=f(name="a", value=Decimal("12.30")),
                        match=CatalogMatch(code="XY01", name="西药费", category="药品", score=100, method="exact")),
               LineItem(line_no=2, name=f(name="n", value="检查费"), amount=f(name="a", value=Decimal("88.00")))),
        total_figures=f(name="total", value=Decimal("100.30")),
        findings=(Finding(rule="total_matches", severity="info", detail="ok"),
                  Finding(rule="item_unmatched", severity="warning", detail="line 2")))
    claim_id = writer.write_claims([(claim, pa)])[0]
    return {"u": u, "a": pa, "b": pb, "c": pc, "claim": claim_id, "db": graph_db}


def test_emr_view_groups_by_type_with_provenance(world):
    db = world["db"]
    view = emr_view(db.driver, world["a"], db.database)
    assert view["pid"] == world["a"] and view["found"]
    c = view["concepts"]
    assert set(c) >= {"Disease", "Symptom", "Drug", "Procedure", "Exam", "LabTest"}
    assert [(e["name"], e["assertion"]) for e in c["Symptom"]] == [("头晕", "affirmed"), ("头痛", "negated")]
    (hyp,) = c["Disease"]
    assert hyp["name"] == "高血压" and hyp["key"] == "高血压" and hyp["date"] == "2024-01-02"
    assert hyp["doc_id"] == f"a1-{world['u']}" and hyp["encounter_id"] == f"e1-{world['u']}"
    assert (hyp["start"], hyp["end"], hyp["text"]) == (8, 11, "高血压")
    assert hyp["evidence"] == "诊断高血压，无头痛。" and hyp["sentence"] == 1 and hyp["model"] == "test-ner"
    assert [e["name"] for e in c["Drug"]] == ["硝苯地平"] and c["Drug"][0]["date"] == "2024-03-04"
    assert [e["name"] for e in c["Exam"]] == ["头颅CT"] and c["Procedure"] == []


def test_emr_view_newest_first_and_documents_without_encounter(world):
    db = world["db"]
    a = emr_view(db.driver, world["a"], db.database)
    dates = [e["date"] for entries in a["concepts"].values() for e in entries]
    assert set(dates) == {"2024-01-02", "2024-03-04"}
    b = emr_view(db.driver, world["b"], db.database)["concepts"]["Disease"]
    assert [(e["name"], e["assertion"], e["date"], e["encounter_id"]) for e in b] == [
        ("高血压", "historical", None, None), ("高血压病史", "affirmed", None, None), ("2型糖尿病", "affirmed", None, None)]
    unknown = emr_view(db.driver, f"nobody-{world['u']}", db.database)
    assert unknown["found"] is False and all(v == [] for v in unknown["concepts"].values())


def test_cohort_affirmed_only(world):
    db = world["db"]
    a, b, c = world["a"], world["b"], world["c"]

    def run(with_, without=()):
        return [p for p in cohort(db.driver, with_, without, db.database) if p.endswith(world["u"])]

    assert run([("Disease", "高血压")]) == [a]  # B's is historical, C's negated
    assert run([("Disease", "糖尿病")]) == [c]
    assert run([("Disease", "２型糖尿病")]) == [b]  # the name is normalised like the writer's keys
    assert run([("Disease", "高血压"), ("Drug", "硝苯地平")]) == [a]
    assert run([("Disease", "高血压")], [("Drug", "硝苯地平")]) == []
    assert run([("Symptom", "头痛")]) == []  # negated only
    assert run([("Disease", "糖尿病")], [("Disease", "高血压")]) == [c]  # C's 高血压 is negated: not excluded
    assert sorted(run([("Exam", "头颅ct")])) == [a]


def test_cohort_query_refuses_unknown_labels():
    with pytest.raises(ValueError):
        cohort_query([("Disease) DETACH DELETE (n", "x")])
    with pytest.raises(ValueError):
        cohort_query([("Patient", "x")])
    with pytest.raises(ValueError):
        cohort_query([], [("Disease", "x")])
    query, params = cohort_query([("Disease", "x'}) //")])
    assert "x'" not in query and params == {"w0": "x'}) //"}


def test_claim_view(world):
    db = world["db"]
    view = claim_view(db.driver, world["claim"], db.database)
    assert view["claim_id"] == world["claim"] and view["pid"] == world["a"]
    assert view["claim"]["total"] == "100.30" and view["claim"]["bill_no"] == "0099"
    assert view["claim"]["issue_date"] == "2024-03-05"
    items = view["items"]
    assert [(i["line_no"], i["name"], i["amount"]) for i in items] == [(1, "西药费", "12.30"), (2, "检查费", "88.00")]
    assert items[0]["match"] == {"code": "XY01", "name": "西药费", "category": "药品", "score": 100.0, "method": "exact"}
    assert items[1]["match"] is None
    assert [(f["rule"], f["severity"]) for f in view["findings"]] == [
        ("total_matches", "info"), ("item_unmatched", "warning")]
    assert claim_view(db.driver, f"missing-{world['u']}", db.database) is None


def test_plans_start_from_an_index(world):
    """The EMR view starts from Patient(pid), the cohort from the first concept's own label index (read from
    ArcadeDB's PROFILE text; Neo4j would show NodeUniqueIndexSeek)."""
    from graph.queries import _EMR
    from graph.schema import is_arcadedb

    db = world["db"]
    if not is_arcadedb(db.driver):
        pytest.skip("plan text checked on ArcadeDB only")

    def plan(query, **params):
        with db.driver.session(database=db.database) as s:
            return s.run("PROFILE " + query, params).consume().profile["args"]["string-representation"]

    emr = plan(_EMR, pid=world["a"])
    first = next(line for line in emr.splitlines() if line.startswith("+ "))
    assert "(p:Patient) [index: Patient[pid]]" in first, emr
    query, params = cohort_query([("Disease", "高血压")], [("Drug", "硝苯地平")])
    assert "NodeIndexSeek" in plan(query, **params) and "index=Disease[key]" in plan(query, **params)

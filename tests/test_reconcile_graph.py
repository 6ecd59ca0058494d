"""Reconciliation in the graph, on the real embedded server: charges written from a charges file, a claim's
inputs read back (context, affirmed and non-affirmed diagnoses, charges, the stay's other claims), findings
written with their evidence links, idempotently."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import pytest

from claims.reconcile import RuleBook
from core.records import (
    Assertion,
    BillField,
    Claim,
    ClinicalRecord,
    DocumentType,
    Entity,
    EntityType,
    FieldKind,
    LineItem,
    Span,
)

RULES = """药品编码,药品名称,性别限制,年龄限制,疾病限制
XL01CDP001,紫杉醇注射液,,,(肿瘤|癌)
XA02BCO008,奥美拉唑肠溶胶囊,,,
"""


@pytest.fixture(scope="module")
def book(tmp_path_factory):
    p = tmp_path_factory.mktemp("rules") / "drug.csv"
    p.write_text(RULES, encoding="utf-8")
    return RuleBook.load(rules=[p])


def _bf(name, value, kind=FieldKind.text):
    return BillField(name=name, value=value, kind=kind)


def _line(no, name, qty, price):
    qty, price = Decimal(qty), Decimal(price)
    return LineItem(line_no=no, name=_bf("name", name), amount=_bf("amount", qty * price, FieldKind.amount),
                    quantity=_bf("q", qty, FieldKind.number), unit_price=_bf("p", price, FieldKind.number))


def _record(doc_id, pid, eid, text, *mentions):
    rec = ClinicalRecord(doc_id=doc_id, text=text, patient_id=pid, encounter_id=eid, recorded_on=date(2026, 3, 2))
    ents = []
    for word, assertion in mentions:
        i = text.index(word)
        ents.append(Entity(span=Span(start=i, end=i + len(word), text=word), type=EntityType.disease,
                           assertion=assertion))
    return rec, tuple(ents), ()


def _graph_writer(graph_db):
    from graph.writer import GraphWriter

    return GraphWriter(graph_db.driver, graph_db.database)


def _setup(graph_db, tmp_path, pid, eid, doc, dx_text, mentions, bill_lines):
    from graph.reconcile import charges_from_file, write_charges

    w = _graph_writer(graph_db)
    w.write_records([_record(f"{doc}-rec", pid, eid, dx_text, *mentions)])
    claim = Claim(doc_id=doc, doc_type=DocumentType.itemised_list, items=tuple(bill_lines),
                  header={"inpatient_no": _bf("inpatient_no", eid)})
    cid = w.write_claim(claim, pid)
    charges = tmp_path / f"{doc}.csv"
    charges.write_text(
        "encounter_id,patient_id,item_code,item_name,quantity,unit_price,amount,date,setting,admitted,discharged,sex,birth_date\n"
        f"{eid},{pid},XL01CDP001,紫杉醇注射液,1,300,300,2026-03-02,inpatient,2026-03-01,2026-03-05,女,1960-05-01\n"
        f"{eid},{pid},XA02BCO008,奥美拉唑肠溶胶囊,2,3.5,7,2026-03-02,,,,,\n", encoding="utf-8")
    ch, enc, pat = charges_from_file(charges)
    write_charges(graph_db.driver, ch, enc, pat, graph_db.database)
    return cid, charges


def _count(graph_db, q, **p):
    with graph_db.driver.session(database=graph_db.database) as s:
        return s.run(q, p).single()[0]


def test_negated_diagnosis_finding_written_with_evidence_idempotently(graph_db, tmp_path, book):
    from graph.reconcile import charges_from_file, reconcile_claim, reconciliation_view, write_charges

    cid, charges_file = _setup(graph_db, tmp_path, "RG-P1", "RG-E1", "rg-doc-1", "患者否认肺癌病史。诊断：肺炎。",
                               [("肺癌", Assertion.negated)],
                               [_line(1, "紫杉醇注射液", "1", "300"), _line(2, "奥美拉唑肠溶胶囊", "2", "3.5"),
                                _line(3, "静脉输液", "1", "10")])
    rec = reconcile_claim(graph_db.driver, cid, book, database=graph_db.database)
    rules = sorted(f.rule for f in rec.findings)
    assert rules == ["recon.billed_not_charged", "recon.restriction.disease"]
    assert rec.context.sex == "女" and rec.context.admitted == date(2026, 3, 1) and rec.context.records == 1
    view = reconciliation_view(graph_db.driver, cid, graph_db.database)
    dis = next(f for f in view["findings"] if f["rule"] == "recon.restriction.disease")
    assert dis["severity"] == "error" and "(肿瘤|癌)" in dis["message"]
    roles = {(c["role"], c["labels"][-1] if c["labels"] else None) for c in dis["cites"]}
    assert ("not_counted", "Document") in {(r, "Document") for r, labels in roles if r == "not_counted"}
    doc_cite = next(c for c in dis["cites"] if c["role"] == "not_counted" and "Document" in c["labels"])
    assert doc_cite["id"] == "rg-doc-1-rec" and doc_cite["sentence"] == 0
    assert any(c["role"] == "charge" for c in dis["cites"]) and any(c["role"] == "line" for c in dis["cites"])
    n_before = _count(graph_db, "MATCH (:Claim {claim_id: $c})-[:HAS_FINDING]->(f:Finding) RETURN count(f)", c=cid)
    nodes_before = _count(graph_db, "MATCH (n) RETURN count(n)")
    # again, and the charges file again: nothing changes
    ch, enc, pat = charges_from_file(charges_file)
    write_charges(graph_db.driver, ch, enc, pat, graph_db.database)
    reconcile_claim(graph_db.driver, cid, book, database=graph_db.database)
    assert _count(graph_db, "MATCH (:Claim {claim_id: $c})-[:HAS_FINDING]->(f:Finding) RETURN count(f)", c=cid) == n_before
    assert _count(graph_db, "MATCH (n) RETURN count(n)") == nodes_before
    assert _count(graph_db, "MATCH (:Encounter {eid: 'RG-E1'})-[:HAS_CHARGE]->(c:Charge) RETURN count(c)") == 2
    assert _count(graph_db, "MATCH (:Claim {claim_id: $c})-[:FOR_ENCOUNTER]->(e:Encounter {eid: 'RG-E1'}) "
                            "RETURN count(e)", c=cid) == 1


def test_affirmed_diagnosis_passes_and_is_cited(graph_db, tmp_path, book):
    from graph.reconcile import reconcile_claim, reconciliation_view

    cid, _ = _setup(graph_db, tmp_path, "RG-P2", "RG-E2", "rg-doc-2", "母亲有肺癌病史。病理诊断：右肺腺癌。",
                    [("肺癌", Assertion.family), ("右肺腺癌", Assertion.affirmed)],
                    [_line(1, "紫杉醇注射液", "1", "300"), _line(2, "奥美拉唑肠溶胶囊", "2", "3.5")])
    rec = reconcile_claim(graph_db.driver, cid, book, database=graph_db.database)
    assert rec.findings == ()
    view = reconciliation_view(graph_db.driver, cid, graph_db.database)
    assert view["findings"] == []
    cited = view["passed"][0]["evidence"]["satisfied_by"][0]
    assert cited["doc_id"] == "rg-doc-2-rec" and cited["sentence"] == 1 and cited["concept"] == "右肺腺癌"


def test_rewriting_a_claim_keeps_the_checks_findings_apart(graph_db, tmp_path, book):
    from graph.reconcile import claim_ids, reconcile_claim

    cid, _ = _setup(graph_db, tmp_path, "RG-P3", "RG-E3", "rg-doc-3", "诊断：胃溃疡。", [("胃溃疡", Assertion.affirmed)],
                    [_line(1, "奥美拉唑肠溶胶囊", "3", "3.5")])
    rec = reconcile_claim(graph_db.driver, cid, book, database=graph_db.database)
    assert sorted(f.rule for f in rec.findings) == ["recon.charged_not_billed", "recon.quantity_mismatch"]
    stored = _count(graph_db, "MATCH (:Claim {claim_id: $c})-[:HAS_FINDING]->(f:Finding {source: 'reconcile'}) "
                              "RETURN count(f)", c=cid)
    assert stored == len(rec.findings)
    assert cid in claim_ids(graph_db.driver, database=graph_db.database)
    ev = _count(graph_db, "MATCH (f:Finding {finding_id: $f}) RETURN f.evidence_json", f=f"{cid}:recon:0")
    assert json.loads(ev)["claim_id"] == cid


def test_batch_pipeline_reconciles_claims_and_dead_letters_unknown_ones(graph_db, tmp_path, book):
    from pipelines.graphio import GraphTarget
    from pipelines.reconcile import run

    cid, _ = _setup(graph_db, tmp_path, "RG-P4", "RG-E4", "rg-doc-4", "否认肿瘤病史。", [("肿瘤", Assertion.negated)],
                    [_line(1, "紫杉醇注射液", "1", "300"), _line(2, "奥美拉唑肠溶胶囊", "2", "3.5")])
    rules = tmp_path / "rules.csv"
    rules.write_text(RULES, encoding="utf-8")
    server = graph_db.server
    state = server.status()
    target = GraphTarget(None, state.get("user", "root"), graph_db.database, str(server.data_dir))
    summary = run([cid, "no-such-claim:0"], rules=[rules], target=target)
    assert summary["reconciled"] == 1 and summary["dead_lettered"] == 1
    assert summary["claims_by_rule"] == {"recon.restriction.disease": 1}
    assert _count(graph_db, "MATCH (:Claim {claim_id: $c})-[:HAS_FINDING]->(f:Finding {source: 'reconcile'}) "
                            "RETURN count(f)", c=cid) == 1


def test_reads_charges_and_visit_as_the_his_feeds_write_them(graph_db, book):
    """DFT^P03 charges and ADT visit facts in the feeds' shape (graph.feed_rows): numbers as floats, ISO
    timestamps, PV1-2 patient class, HL7 sex codes."""
    from graph.reconcile import reconcile_claim

    w = _graph_writer(graph_db)
    w.write_records([_record("rg-feed-rec", "RG-P5", "RG-E5", "诊断：胃溃疡。", ("胃溃疡", Assertion.affirmed))])
    cid = w.write_claim(Claim(doc_id="rg-feed-bill", doc_type=DocumentType.itemised_list, items=(
        _line(1, "奥美拉唑肠溶胶囊", "2", "3.5"), _line(2, "紫杉醇注射液", "1", "300"))), "RG-P5")
    with graph_db.driver.session(database=graph_db.database) as s:
        s.run("MATCH (p:Patient {pid: 'RG-P5'}) SET p.sex = 'F', p.birth_date = '1961-02-03' "
              "WITH p MATCH (p)-[:HAS_ENCOUNTER]->(e:Encounter {eid: 'RG-E5'}) "
              "SET e.visit_class = 'I', e.admitted_at = '2026-04-01T08:00:00.000000Z', "
              "e.discharged_at = '2026-04-04T10:00:00.000000Z', e.status = 'discharged' "
              "WITH e UNWIND $rows AS r MERGE (c:Charge {charge_id: r.id}) SET c += r.props "
              "MERGE (e)-[:HAS_CHARGE]->(c)",
              rows=[{"id": "HIS:1", "props": {"eid": "RG-E5", "pid": "RG-P5", "code": "XA02BCO008", "name": "奥美拉唑肠溶胶囊",
                                              "quantity": 2.0, "amount": 7.0, "unit_price": 3.5, "type": "CG",
                                              "posted_at": "2026-04-01T09:30:00.000000Z"}},
                    {"id": "HIS:2", "props": {"eid": "RG-E5", "pid": "RG-P5", "code": "XL01CDP001", "name": "紫杉醇注射液",
                                              "quantity": 1.0, "amount": 300.0, "unit_price": 300.0, "type": "CG",
                                              "posted_at": "2026-04-02T09:30:00.000000Z"}}]).consume()
    rec = reconcile_claim(graph_db.driver, cid, book, database=graph_db.database)
    ctx = rec.context
    assert (ctx.sex, ctx.setting, ctx.admitted, ctx.discharged, ctx.birth_date) == (
        "女", "inpatient", date(2026, 4, 1), date(2026, 4, 4), date(1961, 2, 3))
    assert rec.charges == 2
    assert [f.rule for f in rec.findings] == ["recon.restriction.disease"]  # figures agree; no tumour affirmed
    assert rec.findings[0].evidence["charges"][0]["charge_id"] == "HIS:2"


def test_a_rescanned_receipt_is_the_same_bill(graph_db, book):
    from graph.reconcile import reconcile_claim

    w = _graph_writer(graph_db)
    header = {"bill_code": _bf("bill_code", "33010123"), "bill_no": _bf("bill_no", "0009876")}
    items = (_line(1, "奥美拉唑肠溶胶囊", "2", "3.5"),)
    first = w.write_claim(Claim(doc_id="rg-scan-1", doc_type=DocumentType.itemised_list, items=items, header=header),
                          "RG-P6")
    second = w.write_claim(Claim(doc_id="rg-scan-2", doc_type=DocumentType.itemised_list, items=items, header=header),
                           "RG-P6")
    rec = reconcile_claim(graph_db.driver, second, book, database=graph_db.database)
    assert [f.rule for f in rec.findings] == ["recon.duplicate.same_file"]
    assert rec.findings[0].evidence["other_claim_id"] == first and "票据" in rec.findings[0].message


def test_a_procedure_in_the_record_meets_a_rule_naming_it(graph_db, tmp_path):
    from graph.reconcile import reconcile_claim, reconciliation_view

    rules = tmp_path / "transplant.csv"
    rules.write_text("药品编码,药品名称,疾病限制\nXL04AAM026X0,吗替麦考酚酯胶囊,(器官移植|抗排异反应)\n", encoding="utf-8")
    book2 = RuleBook.load(rules=[rules])
    w = _graph_writer(graph_db)
    for pid, text, assertion in (("RG-P7", "2020年行肾移植术。诊断：器官移植状态。", Assertion.affirmed),
                                 ("RG-P8", "否认器官移植史。诊断：肾病综合征。", Assertion.negated)):
        i = text.index("器官移植")
        ent = Entity(span=Span(start=i, end=i + 4, text="器官移植"), type=EntityType.procedure, assertion=assertion)
        w.write_records([(ClinicalRecord(doc_id=f"{pid}-rec", text=text, patient_id=pid), (ent,), ())])
        w.write_claim(Claim(doc_id=f"{pid}-bill", doc_type=DocumentType.itemised_list,
                            items=(_line(1, "吗替麦考酚酯胶囊", "1", "100"),)), pid)
    ok = reconcile_claim(graph_db.driver, "RG-P7-bill:0", book2, database=graph_db.database)
    assert ok.findings == () and ok.passed[0]["evidence"]["satisfied_by"][0]["label"] == "Procedure"
    bad = reconcile_claim(graph_db.driver, "RG-P8-bill:0", book2, database=graph_db.database)
    assert [f.rule for f in bad.findings] == ["recon.restriction.disease"]
    cites = reconciliation_view(graph_db.driver, "RG-P8-bill:0", graph_db.database)["findings"][0]["cites"]
    assert {c["role"] for c in cites if "Procedure" in c["labels"]} == {"not_counted"}

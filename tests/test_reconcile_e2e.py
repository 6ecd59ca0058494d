"""End to end (issue 21): clinical records ingested through NER (the real stage), an itemised bill through OCR
(an ocr.synth render), HIS charges from a charges file → a disease-restriction finding that cites the catalogue
rule and the record's evidence (a negated or family mention, not counted) or its absence; the same bill billed to
a patient with an affirmed cancer passes, citing the document and sentence. Then ``medkg reconcile`` on the same
graph. The rules file is written here (one line: 利伐沙班片 限(肿瘤|癌)), nothing from ../shared."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from claims.reconcile import RuleBook
from tests.ingest_helpers import ingest, start_server

RULES = "药品编码,药品名称,性别限制,疾病限制\nXB01AFL001,利伐沙班片,,(肿瘤|癌)\n"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from ocr.synth.page import render_page

    d = tmp_path_factory.mktemp("recon-e2e")
    page = render_page(46, degrade=False)  # 住院费用明细 of 住院号 7626462601: 利伐沙班片 among its lines
    Image.fromarray(page.image).save(d / "itemised.png")
    fields = page.meta["fields"]
    eid = fields["patient"]["住院号"]
    records = [
        {"doc_id": "e2e-neg", "patient_id": "E2E-P1", "encounter_id": eid, "date": "2019-05-05",
         "text": "主诉：咳嗽3天。既往史：否认肺癌病史，否认糖尿病史。家族史：母亲患有乳腺癌。入院诊断：社区获得性肺炎。"},
        {"doc_id": "e2e-pos", "patient_id": "E2E-P2", "encounter_id": "E2E-E2", "date": "2019-05-05",
         "text": "主诉：咳嗽、咯血1月。病理诊断：右肺腺癌。入院诊断：右肺腺癌，阻塞性肺炎。"},
    ]
    (d / "records.jsonl").write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in records) + "\n",
                                     encoding="utf-8")
    rows = ["encounter_id,patient_id,item_name,quantity,unit_price,amount,date,setting,admitted,discharged,sex,birth_date"]
    for i, it in enumerate(fields["items"]):
        visit = "inpatient,2019-05-05,2019-05-08,男,1970-03-01" if i == 0 else ",,,,"
        rows.append(f"{eid},E2E-P1,{it['name']},{it['qty']},{it['price']},{it['amount']},{it['date']},{visit}")
    (d / "charges.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    (d / "rules.csv").write_text(RULES, encoding="utf-8")
    server = start_server(d / "graph")
    try:
        summary = ingest("all", [d / "itemised.png", d / "records.jsonl"], d / "out", server)
        yield {"dir": d, "server": server, "eid": eid, "summary": summary}
    finally:
        server.down()


@pytest.fixture(scope="module")
def drv(world):
    import neo4j

    conn = world["server"].connection()
    with neo4j.GraphDatabase.driver(conn.uri, auth=(conn.user, conn.password)) as driver:
        yield driver, conn.database


def _claim_id(driver, db):
    with driver.session(database=db) as s:
        ids = [r["id"] for r in s.run("MATCH (c:Claim) RETURN c.claim_id AS id")]
    assert len(ids) == 1, ids
    return ids[0]


def test_disease_restriction_end_to_end(world, drv):
    from graph.reconcile import charges_from_file, reconcile_claim, reconciliation_view, write_charges

    driver, db = drv
    assert world["summary"]["dead_lettered"] == 0
    ch, enc, pat = charges_from_file(world["dir"] / "charges.csv")
    write_charges(driver, ch, enc, pat, db)
    book = RuleBook.load(rules=[world["dir"] / "rules.csv"])
    cid = _claim_id(driver, db)
    rec = reconcile_claim(driver, cid, book, database=db)  # the stay found by the bill's printed 住院号
    assert rec.context.encounter_id == world["eid"] and rec.context.patient_id == "E2E-P1"
    assert rec.context.records == 1 and rec.charges == len(ch)
    disease = [f for f in rec.findings if f.rule == "recon.restriction.disease"]
    assert len(disease) == 1, [f.detail for f in rec.findings]
    f = disease[0]
    assert f.severity == "error" and "利伐沙班片" in f.message and "(肿瘤|癌)" in f.message
    assert f.evidence["rule"]["text"] == "(肿瘤|癌)" and f.evidence["catalogue"]["code"] == "XB01AFL001"
    facts = f.evidence["facts"]
    assert facts["satisfied_by"] == []  # no affirmed cancer: the negated and family mentions never count
    assert all(m["assertion"] != "affirmed" and m["doc_id"] == "e2e-neg" for m in facts["not_counted"])
    view = reconciliation_view(driver, cid, db)
    stored = next(x for x in view["findings"] if x["rule"] == "recon.restriction.disease")
    assert stored["message"] == f.message
    if facts["not_counted"]:  # the record's evidence, linked: its document and sentence
        docs = [c for c in stored["cites"] if c["role"] == "not_counted" and "Document" in c["labels"]]
        assert docs and docs[0]["id"] == "e2e-neg" and docs[0]["sentence"] is not None
    # the bill agrees with the charges: no billing finding beyond what OCR may have misread
    assert not [x for x in rec.findings if x.rule in ("recon.charged_not_billed", "recon.duplicate.same_file")]


def test_affirmed_cancer_meets_the_restriction_and_is_cited(world, drv):
    from graph.reconcile import link_claim, reconcile_claim

    driver, db = drv
    cid = _claim_id(driver, db)
    link_claim(driver, cid, "E2E-E2", db)
    try:
        rec = reconcile_claim(driver, cid, RuleBook.load(rules=[world["dir"] / "rules.csv"]), database=db)
        assert rec.context.patient_id == "E2E-P2"
        assert not [f for f in rec.findings if f.rule == "recon.restriction.disease"]
        cited = next(p for p in rec.passed if p["rule"] == "recon.restriction.disease")["evidence"]["satisfied_by"][0]
        assert cited["doc_id"] == "e2e-pos" and "癌" in cited["concept"] and cited["assertion"] == "affirmed"
        assert cited["sentence"] is not None and "癌" in cited["evidence"]
    finally:
        link_claim(driver, cid, world["eid"], db)


def test_cli_reconcile(world, drv, monkeypatch):
    from typer.testing import CliRunner

    from cli.main import app

    driver, db = drv
    cid = _claim_id(driver, db)
    monkeypatch.setenv("MEDKG_GRAPH_DIR", str(world["server"].data_dir))
    monkeypatch.delenv("NEO4J_URI", raising=False)
    res = CliRunner().invoke(app, ["reconcile", cid, "--rules", str(world["dir"] / "rules.csv"),
                                   "--charges", str(world["dir"] / "charges.csv")])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["claim_id"] == cid and "recon.restriction.disease" in {f["rule"] for f in out["findings"]}
    res = CliRunner().invoke(app, ["reconcile", "nope:0"])
    assert res.exit_code == 1
    res = CliRunner().invoke(app, ["reconcile", "--all", "--since", "2000-01-01", "--dry-run", "--rules",
                                   str(world["dir"] / "rules.csv")])
    assert res.exit_code == 0, res.output
    assert [json.loads(x)["claim_id"] for x in res.stdout.strip().splitlines()] == [cid]
    res = CliRunner().invoke(app, ["reconcile", "--all", "--since", "2999-01-01"])
    assert res.exit_code == 0 and res.stdout.strip() == ""


def test_the_finding_is_visible_through_the_api(world, drv, tmp_path, monkeypatch):
    """The same claim through `POST` then `GET /v1/claims/{id}/reconciliation`, as a clerk: the disease finding
    quotes the rule and cites the negated and family mentions' document."""
    from fastapi.testclient import TestClient

    from api.app import create_app
    from core.settings import Settings
    from tests.api_helpers import add_keys

    driver, db = drv
    cid = _claim_id(driver, db)
    monkeypatch.delenv("NEO4J_URI", raising=False)
    keys = add_keys(tmp_path)
    app = create_app(Settings(data_dir=tmp_path, reconcile_rules=str(world["dir"] / "rules.csv")),
                     graph_dir=str(world["server"].data_dir), load_models=False)
    clerk = {"X-API-Key": keys["clerk"]}
    with TestClient(app) as client:
        ran = client.post(f"/v1/claims/{cid}/reconciliation", headers=clerk)
        assert ran.status_code == 200, ran.text
        stored = client.get(f"/v1/claims/{cid}/reconciliation", headers=clerk).json()
        assert client.get(f"/v1/claims/{cid}/reconciliation",
                          headers={"X-API-Key": keys["researcher"]}).status_code == 403
    assert stored["findings"] == ran.json()["findings"]
    disease = [f for f in stored["findings"] if f["rule"] == "recon.restriction.disease"]
    assert len(disease) == 1 and "利伐沙班片" in disease[0]["message"] and "(肿瘤|癌)" in disease[0]["message"]
    cited = [c for c in disease[0]["cites"] if c["role"] == "not_counted" and "Document" in c["labels"]]
    assert cited and all(c["id"] == "e2e-neg" for c in cited)

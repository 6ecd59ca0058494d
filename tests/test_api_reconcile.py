"""GET/POST /v1/claims/{id}/reconciliation (role clerk) on the real embedded graph server: a claim, its stay's
HIS charges and a diagnosis written to the graph, a tiny hand-made rules CSV configured (MEDKG_RECONCILE_RULES);
the stored findings before and after a run, the run again (idempotent), unknown claims, no rules configured
(409 with its reason code) and wrong roles. The app runs in process (no models needed)."""

from __future__ import annotations

import hashlib
from datetime import date

import pytest
from api_helpers import add_keys
from test_reconcile_graph import RULES, _bf, _line  # the same rule book and bill builders

from core.records import (
    Assertion,
    Claim,
    ClinicalRecord,
    DocumentType,
    Entity,
    EntityType,
    Span,
)

pytestmark = pytest.mark.slow
UNKNOWN = "f" * 64 + ":0"


@pytest.fixture(scope="module")
def claim_id(graph_db, tmp_path_factory):
    """A claim billing 紫杉醇 (restricted to tumours) for a patient whose record denies lung cancer, and a line
    the HIS never charged."""
    from graph.reconcile import charges_from_file, write_charges
    from graph.writer import GraphWriter

    pid, eid, doc = "AR-P1", "AR-E1", hashlib.sha256(b"api-recon-bill").hexdigest()  # claim id: <sha256>:<page>
    text = "患者否认肺癌病史。诊断：肺炎。"
    i = text.index("肺癌")
    rec = ClinicalRecord(doc_id="api-recon-record", text=text, patient_id=pid, encounter_id=eid,
                         recorded_on=date(2026, 3, 2))
    ent = Entity(span=Span(start=i, end=i + 2, text="肺癌"), type=EntityType.disease, assertion=Assertion.negated)
    w = GraphWriter(graph_db.driver, graph_db.database)
    w.write_records([(rec, (ent,), ())])
    claim = Claim(doc_id=doc, doc_type=DocumentType.itemised_list,
                  items=(_line(1, "紫杉醇注射液", "1", "300"), _line(2, "奥美拉唑肠溶胶囊", "2", "3.5"),
                         _line(3, "静脉输液", "1", "10")),
                  header={"inpatient_no": _bf("inpatient_no", eid)})
    cid = w.write_claim(claim, pid)
    charges = tmp_path_factory.mktemp("api-recon") / "charges.csv"
    charges.write_text(
        "encounter_id,patient_id,item_code,item_name,quantity,unit_price,amount,date,setting,admitted,discharged,sex,birth_date\n"
        f"{eid},{pid},XL01CDP001,紫杉醇注射液,1,300,300,2026-03-02,inpatient,2026-03-01,2026-03-05,女,1960-05-01\n"
        f"{eid},{pid},XA02BCO008,奥美拉唑肠溶胶囊,2,3.5,7,2026-03-02,,,,,\n", encoding="utf-8")
    ch, enc, pat = charges_from_file(charges)
    write_charges(graph_db.driver, ch, enc, pat, graph_db.database)
    return cid


def _app(graph_db, tmp_path, monkeypatch, **settings_kw):
    from fastapi.testclient import TestClient

    from api.app import create_app
    from core.settings import Settings

    monkeypatch.delenv("NEO4J_URI", raising=False)
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    keys = add_keys(data)
    app = create_app(Settings(data_dir=data, **settings_kw), graph_dir=str(graph_db.server.data_dir),
                     load_models=False)
    return TestClient(app), keys


def test_reconciliation_stored_then_run_then_run_again(graph_db, tmp_path, monkeypatch, claim_id):
    rules = tmp_path / "drug-rules.csv"
    rules.write_text(RULES, encoding="utf-8")
    client, keys = _app(graph_db, tmp_path, monkeypatch, reconcile_rules=str(rules))
    clerk = {"X-API-Key": keys["clerk"]}
    url = f"/v1/claims/{claim_id}/reconciliation"
    with client as c:
        before = c.get(url, headers=clerk)
        assert before.status_code == 200, before.text
        assert before.json() == {"claim_id": claim_id, "reconciled_at": None, "passed": [], "findings": []}

        ran = c.post(url, headers=clerk)
        assert ran.status_code == 200, ran.text
        body = ran.json()
        assert body["reconciled_at"] and body["claim_id"] == claim_id
        assert sorted(f["rule"] for f in body["findings"]) == ["recon.billed_not_charged", "recon.restriction.disease"]
        dis = next(f for f in body["findings"] if f["rule"] == "recon.restriction.disease")
        assert dis["severity"] == "error" and "(肿瘤|癌)" in dis["message"]
        assert any(x["role"] == "not_counted" and x["id"] == "api-recon-record" for x in dis["cites"])

        stored = c.get(url, headers=clerk).json()
        assert stored == body
        again = c.post(url, headers=clerk).json()
        assert [f["finding_id"] for f in again["findings"]] == [f["finding_id"] for f in body["findings"]]

        for method in ("GET", "POST"):
            r = c.request(method, f"/v1/claims/{UNKNOWN}/reconciliation", headers=clerk)
            assert r.status_code == 404 and r.json()["code"] == "claim-not-found"
            for role in ("clinician", "researcher", "integration", "admin"):
                r = c.request(method, url, headers={"X-API-Key": keys[role]})
                assert r.status_code == 403 and r.json()["code"] == "forbidden-role"
            assert c.request(method, url).status_code == 401


def test_no_rules_configured_is_409_with_a_reason(graph_db, tmp_path, monkeypatch, claim_id):
    for var in ("MEDKG_RECONCILE_RULES", "MEDKG_RECONCILE_CATALOGUE", "MEDKG_RECONCILE_CLASSES",
                "MEDKG_RECONCILE_DISEASES"):
        monkeypatch.delenv(var, raising=False)
    client, keys = _app(graph_db, tmp_path, monkeypatch)
    with client as c:
        r = c.post(f"/v1/claims/{claim_id}/reconciliation", headers={"X-API-Key": keys["clerk"]})
        assert r.status_code == 409 and r.json()["code"] == "reconcile-not-configured"
        assert "MEDKG_RECONCILE_RULES" in r.json()["detail"]
        assert r.headers["content-type"].startswith("application/problem+json")
        # the stored view needs no rules
        assert c.get(f"/v1/claims/{claim_id}/reconciliation", headers={"X-API-Key": keys["clerk"]}).status_code == 200


def test_unreadable_rules_are_409_with_a_reason(graph_db, tmp_path, monkeypatch, claim_id):
    client, keys = _app(graph_db, tmp_path, monkeypatch, reconcile_rules=str(tmp_path / "missing.csv"))
    with client as c:
        r = c.post(f"/v1/claims/{claim_id}/reconciliation", headers={"X-API-Key": keys["clerk"]})
        assert r.status_code == 409 and r.json()["code"] == "reconcile-rules-unreadable", r.text

"""GET /v1/patients/{pid}/facts against the real server: a patient's own facts (affirmed statements of the
patient's documents), apart from the knowledge counted over all documents; non-affirmed statements only on
request, each with its arguments' assertions; clinicians only, every read in the access log."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PID = "P-FACTS-1"
ENCOUNTER = "E-FACTS-1"
NON_AFFIRMED = {"negated", "possible", "historical", "family"}


@pytest.fixture(scope="module")
def record(api):
    """The first sample record (it holds 否认糖尿病史 and 父亲患有2型糖尿病), posted for a patient of its own."""
    first = json.loads((ROOT / "samples" / "records.jsonl").read_text(encoding="utf-8").splitlines()[0])
    text = first["text"]
    assert "否认糖尿病史" in text and "父亲患有2型糖尿病" in text
    with api.client("integration") as c:
        r = c.post("/v1/records", json={"text": text, "patient_id": PID, "encounter_id": ENCOUNTER,
                                        "recorded_on": first["date"]})
    assert r.status_code == 201, r.text
    assert r.json()["relations"], "the sample record should yield relations"
    return text


def _span(text: str, phrase: str) -> tuple[int, int]:
    start = text.index(phrase)
    return start, start + len(phrase)


def test_by_default_only_the_patients_affirmed_facts(api, record):
    with api.client("clinician") as c:
        r = c.get(f"/v1/patients/{PID}/facts")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["pid"] == PID and body["include_non_affirmed"] is False
    facts = body["facts"]
    assert facts, "the sample record should give this patient some facts"
    for f in facts:
        assert f["affirmed"] is True
        assert f["subject"]["assertion"] == "affirmed" and f["object"]["assertion"] == "affirmed"
        assert f["doc_id"] and f["encounter_id"] == ENCOUNTER and f["date"].startswith("2026-03-02")
        assert f["evidence"] and f["subject"]["text"] in f["evidence"] and f["object"]["text"] in f["evidence"]
        assert record[f["subject"]["start"]:f["subject"]["end"]] == f["subject"]["text"]
        # an affirmed statement counts as knowledge: the concept-level edge exists with evidence >= 1
        assert f["knowledge_evidence"] is not None and f["knowledge_evidence"] >= 1


def test_include_non_affirmed_adds_negated_and_family_statements_with_their_assertions(api, record):
    with api.client("clinician") as c:
        affirmed = c.get(f"/v1/patients/{PID}/facts").json()["facts"]
        r = c.get(f"/v1/patients/{PID}/facts", params={"include_non_affirmed": "true"})
    assert r.status_code == 200, r.text
    facts = r.json()["facts"]
    extra = [f for f in facts if not f["affirmed"]]
    assert extra, "否认糖尿病史 / 父亲患有2型糖尿病 should give some non-affirmed statements"
    assert len(facts) == len(affirmed) + len(extra)
    assert {f["statement_id"] for f in facts if f["affirmed"]} == {f["statement_id"] for f in affirmed}
    negated, family = _span(record, "否认糖尿病史"), _span(record, "父亲患有2型糖尿病")
    seen = set()
    for f in extra:
        args = (f["subject"], f["object"])
        assert any(a["assertion"] in NON_AFFIRMED for a in args), f
        for a in args:  # the right assertion for a mention inside either phrase
            if negated[0] <= a["start"] and a["end"] <= negated[1]:
                assert a["assertion"] == "negated", f
                seen.add("negated")
            if family[0] <= a["start"] and a["end"] <= family[1]:
                assert a["assertion"] == "family", f
                seen.add("family")
    assert seen, "some non-affirmed statement should rest on 否认糖尿病史 or 父亲患有2型糖尿病"


def test_type_filter_and_date_window(api, record):
    with api.client("clinician") as c:
        every = c.get(f"/v1/patients/{PID}/facts", params={"include_non_affirmed": "true"}).json()["facts"]
        predicate = every[0]["type"]
        typed = c.get(f"/v1/patients/{PID}/facts", params={"include_non_affirmed": "true", "type": predicate})
        later = c.get(f"/v1/patients/{PID}/facts", params={"include_non_affirmed": "true", "since": "2026-03-03"})
        window = c.get(f"/v1/patients/{PID}/facts", params={"include_non_affirmed": "true",
                                                              "since": "2026-03-01", "until": "2026-03-02"})
        bad = c.get(f"/v1/patients/{PID}/facts", params={"type": "NOT_A_PREDICATE"})
    assert typed.status_code == 200
    assert typed.json()["facts"] == [f for f in every if f["type"] == predicate]
    assert later.status_code == 200 and later.json()["facts"] == []
    assert window.json()["facts"] == every
    assert bad.status_code == 422 and bad.headers["content-type"].startswith("application/problem+json")


def test_unknown_patient_is_a_404_problem(api):
    with api.client("clinician") as c:
        r = c.get("/v1/patients/P-FACTS-nobody/facts")
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["type"].endswith("patient-not-found")


def test_researchers_get_403_and_no_key_401(api, record):
    with api.client("researcher") as res:
        r = res.get(f"/v1/patients/{PID}/facts")
    assert r.status_code == 403 and r.headers["content-type"].startswith("application/problem+json")
    with api.client() as anon:
        r = anon.get(f"/v1/patients/{PID}/facts")
    assert r.status_code == 401 and r.headers["content-type"].startswith("application/problem+json")


def test_every_read_is_in_the_access_log(api, record):
    with api.client("clinician") as c:
        assert c.get(f"/v1/patients/{PID}/facts", params={"type": "TREATED_WITH_DRUG"}).status_code == 200
    with api.client("researcher") as res:
        assert res.get(f"/v1/patients/{PID}/facts").status_code == 403
    rows = [json.loads(line) for line in (api.data_dir / "access.jsonl").read_text().splitlines()]
    mine = [r for r in rows if r["route"] == "/v1/patients/{pid}/facts" and r.get("pid") == PID]
    assert any(r["role"] == "clinician" and r["status"] == 200 and r["method"] == "GET" for r in mine)
    assert any(r["role"] == "researcher" and r["status"] == 403 for r in mine)
    assert all(r["user"] and r["key_id"] and r["at"] for r in mine if r["status"] != 401)  # 401: no one to name

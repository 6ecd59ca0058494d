"""Researchers see no patient id, name or free text: identifiers are planted in records posted through the API,
then every researcher response is searched for them. Pseudonyms are a keyed HMAC, stable; counts below k are
suppressed (the guard against NER tagging a piece of an identifier as a concept). Clinicians' reads of a patient land in the access log."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

pytestmark = pytest.mark.slow

NAMES = ["欧阳锋", "慕容复", "段正淳", "乔北溟", "萧远山", "丁春秋"]
PIDS = [f"PLANT-{i:04d}-Z" for i in range(len(NAMES))]
# an identifier belongs to one patient: a name, an address, a phone number each (NER may tag an address as a
# concept; a concept reaches a researcher only when at least k patients share it, so these never can)
ADDRESSES = ["幸福里88号", "杏花村12号", "桃源路7号", "柳岸街301号", "梅园巷9号", "竹林道45号"]
PHONES = [f"1390000{i:04d}" for i in range(len(NAMES))]


@pytest.fixture(scope="module")
def planted(api):
    with api.client("integration") as c:
        for i, (pid, name) in enumerate(zip(PIDS, NAMES)):
            text = (f"患者{name}，男，住{ADDRESSES[i]}，电话{PHONES[i]}。主诉：反复头痛{i + 2}年。"
                    f"诊断：2型糖尿病，高血压。给予二甲双胍口服。否认冠心病。")
            r = c.post("/v1/records", json={"text": text, "patient_id": pid, "encounter_id": f"{pid}-E1",
                                            "recorded_on": f"2025-0{1 + i % 9}-15", "sex": "MF"[i % 2],
                                            "birth_year": 1950 + 7 * i})
            assert r.status_code == 201, r.text
            assert any(e["type"] == "Disease" for e in r.json()["entities"])
    return PIDS


def _assert_clean(text: str) -> None:
    for secret in [*NAMES, *PIDS, *ADDRESSES, *(a[:3] for a in ADDRESSES), *PHONES, "PLANT-", "-E1", "主诉", "电话"]:
        assert secret not in text, f"{secret!r} leaked into a researcher response"


def test_researcher_responses_hold_no_identifier_name_or_text(api, planted):
    with api.client("researcher") as res:
        responses = [
            res.post("/v1/cohorts", json={"include": [{"type": "Disease", "name": "2型糖尿病"}]}),
            res.post("/v1/cohorts", json={"include": [{"type": "Disease", "name": "2型糖尿病"},
                                                      {"type": "Disease", "name": "高血压"}],
                                          "exclude": [{"type": "Disease", "name": "冠心病"}]}),
            res.post("/v1/cohorts", json={"include": [{"type": "Disease", "name": "2型糖尿病"}],
                                          "since": "2025-01-01", "until": "2025-12-31"}),
            res.post("/v1/cohorts", json={"include": [{"type": "Disease", "name": "2型糖尿病"}],
                                          "since": "2025-01-01", "until": "2025-02-28"}),
            res.get("/v1/concepts/Disease/2型糖尿病"), res.get("/v1/concepts/Disease/高血压"),
            res.get("/v1/concepts/Drug/二甲双胍"),
        ]
    for r in responses:
        assert r.status_code in (200, 404), r.text
        _assert_clean(r.text)
    full = responses[0].json()
    assert full["count"] is not None and full["count"] >= len(PIDS) and not full["suppressed"]
    key = (api.data_dir / "pseudonym.key").read_text().strip().encode()
    expected = {hmac.new(key, pid.encode(), hashlib.sha256).hexdigest()[:32] for pid in PIDS}
    assert expected <= set(full["patients"])
    assert all(g["count"] is None or g["count"] >= full["k"] for g in full["sex"] + full["age_band"])
    assert all(c["patients"] >= full["k"] for c in full["co_occurring"])
    window = responses[3].json()  # two of the planted records fall in January-February: below k
    assert window["suppressed"] and window["count"] is None and window["patients"] == []


def test_pseudonyms_are_stable(api, planted):
    with api.client("researcher") as res:
        body = {"include": [{"type": "Disease", "name": "2型糖尿病"}]}
        assert res.post("/v1/cohorts", json=body).json()["patients"] == res.post("/v1/cohorts", json=body).json()["patients"]


def test_a_clinician_sees_the_patient_and_the_read_is_logged(api, planted):
    pid = PIDS[0]
    with api.client("clinician") as c:
        emr = c.get(f"/v1/patients/{pid}/emr", params={"type": "Disease", "assertion": "affirmed"})
        assert emr.status_code == 200
        diseases = emr.json()["concepts"]["Disease"]
        assert {d["key"] for d in diseases} >= {"2型糖尿病"} and all(d["assertion"] == "affirmed" for d in diseases)
        assert "Drug" not in emr.json()["concepts"]
        negated = c.get(f"/v1/patients/{pid}/emr", params={"assertion": "negated"}).json()["concepts"]
        assert all(e["assertion"] == "negated" for entries in negated.values() for e in entries)
        assert c.get(f"/v1/patients/{pid}/emr", params={"since": "2030-01-01"}).json()["concepts"]["Disease"] == []
        timeline = c.get(f"/v1/patients/{pid}/timeline").json()
        assert timeline["events"][0]["encounter_id"] == f"{pid}-E1"
        assert c.get("/v1/patients/NOBODY-0/emr").status_code == 404
    rows = [json.loads(line) for line in (api.data_dir / "access.jsonl").read_text().splitlines()]
    mine = [r for r in rows if r.get("pid") == pid and r["route"] == "/v1/patients/{pid}/emr"]
    assert mine and mine[-1]["user"] == "test-clinician" and mine[-1]["role"] == "clinician"
    assert mine[-1]["client"] == "127.0.0.1" and mine[-1]["at"] and mine[-1]["status"] == 200

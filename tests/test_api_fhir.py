"""FHIR R4 through the API (role integration) against a real `medkg serve` with its own embedded Valkey:
201 only once the payload is in the feed stream (byte for byte), an OperationOutcome (application/fhir+json)
for every refused payload (kept in the dead-letter stream), problem details for a missing key or a wrong role
(nothing stored), and 503 with Retry-After from a server whose feed buffer is down."""

from __future__ import annotations

import json

import pytest
from api_helpers import ROOT, add_keys

pytestmark = pytest.mark.slow
BUNDLE = ROOT / "samples" / "fhir" / "bundle_inpatient.json"
FHIR = "application/fhir+json"


@pytest.fixture(scope="module")
def buffer(api):
    b = api.feeds.connect()
    yield b
    b.close()


@pytest.fixture(scope="module")
def integ(api):
    with api.client("integration") as c:
        yield c


def _lengths(buffer) -> tuple[int, int]:
    return buffer.client.xlen(buffer.target.stream), buffer.client.xlen(buffer.target.dead_stream)


def _stored(buffer, outcome: dict) -> dict:
    entry = outcome["id"].replace(".", "-")
    [(_, fields)] = buffer.client.xrange(buffer.target.stream, entry, entry)
    return fields


def test_a_bundle_is_201_once_it_is_in_the_stream(integ, buffer):
    raw = BUNDLE.read_bytes()
    r = integ.post("/fhir/r4/Bundle", content=raw, headers={"content-type": FHIR})
    assert r.status_code == 201, r.text
    assert r.headers["content-type"].startswith(FHIR)
    body = r.json()
    assert body["resourceType"] == "OperationOutcome" and body["issue"][0]["severity"] == "information"
    fields = _stored(buffer, body)
    assert fields[b"raw"] == raw and fields[b"source"] == b"fhir" and fields[b"type"] == b"Bundle"
    assert fields[b"peer"] == b"127.0.0.1"


def test_a_transaction_bundle_and_single_resources(integ, buffer):
    bundle = json.loads(BUNDLE.read_text())
    bundle["type"] = "transaction"
    r = integ.post("/fhir/r4/Bundle", json=bundle)  # application/json is accepted too
    assert r.status_code == 201, r.text
    for entry in bundle["entry"]:
        res = entry["resource"]
        r = integ.post(f"/fhir/r4/{res['resourceType']}", content=json.dumps(res).encode(),
                       headers={"content-type": f"{FHIR}; charset=utf-8"})
        assert r.status_code == 201, (res["resourceType"], r.text)
        fields = _stored(buffer, r.json())
        assert json.loads(fields[b"raw"]) == res
        assert fields[b"control_id"] == f"{res['resourceType']}/{res.get('id', '')}".encode()


@pytest.mark.parametrize(("path", "payload", "status", "words"), [
    ("/fhir/r4/Bundle", b"{not json", 400, "not json"),
    ("/fhir/r4/Patient", json.dumps({"resourceType": "Patient", "birthDate": "not-a-date"}).encode(), 422,
     "birthdate"),
    ("/fhir/r4/Encounter", json.dumps({"resourceType": "Patient", "id": "p1"}).encode(), 422, "does not match"),
    ("/fhir/r4/Encounter", json.dumps({"resourceType": "Encounter"}).encode(), 422, "class"),
    ("/fhir/r4/Bundle", json.dumps({"resourceType": "Bundle", "type": "searchset"}).encode(), 422,
     "batch or transaction"),
    ("/fhir/r4/Bundle", json.dumps({"resourceType": "Bundle", "type": "batch",
                                    "entry": [{"resource": {"resourceType": "Account"}}]}).encode(), 422, "account"),
    ("/fhir/r4/Bundle", json.dumps({"resourceType": "Bundle", "type": "batch",
                                    "entry": [{"resource": {"resourceType": "Patient"}}] * 1001}).encode(), 413,
     "limit"),
])
def test_invalid_resources_get_an_operation_outcome(integ, buffer, path, payload, status, words):
    stream, dead = _lengths(buffer)
    r = integ.post(path, content=payload, headers={"content-type": FHIR})
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(FHIR)
    body = r.json()
    assert body["resourceType"] == "OperationOutcome" and body["issue"][0]["severity"] == "error"
    assert words in body["issue"][0]["diagnostics"].lower()
    assert _lengths(buffer) == (stream, dead + 1)  # refused, and kept as a dead letter with its reason


def test_not_json_content_and_unknown_types(integ, buffer):
    before = _lengths(buffer)
    r = integ.post("/fhir/r4/Patient", content=b"<Patient/>", headers={"content-type": "application/fhir+xml"})
    assert r.status_code == 415 and r.json()["resourceType"] == "OperationOutcome"
    assert _lengths(buffer) == before
    r = integ.post("/fhir/r4/Practitioner", json={"resourceType": "Practitioner"})
    assert r.status_code == 422 and r.headers["content-type"].startswith(FHIR)
    assert "not accepted" in r.json()["issue"][0]["diagnostics"]
    assert _lengths(buffer) == (before[0], before[1] + 1)


@pytest.mark.parametrize("role", ["clerk", "clinician", "researcher", "admin"])
def test_a_wrong_role_is_403_and_nothing_is_stored(api, buffer, role):
    before = _lengths(buffer)
    with api.client(role) as c:
        r = c.post("/fhir/r4/Bundle", content=BUNDLE.read_bytes(), headers={"content-type": FHIR})
    assert r.status_code == 403 and r.json()["code"] == "forbidden-role"
    with api.client() as c:
        assert c.post("/fhir/r4/Patient", json={"resourceType": "Patient"}).status_code == 401
    assert _lengths(buffer) == before


def test_the_buffer_down_is_503_with_retry_after(graph_db, tmp_path, monkeypatch):
    """An in-process app whose feed buffer was never started: it starts, and FHIR answers 503, nothing stored."""
    from fastapi.testclient import TestClient

    from api.app import create_app
    from core.settings import Settings

    for var in ("NEO4J_URI", "REDIS_URL"):
        monkeypatch.delenv(var, raising=False)
    data = tmp_path / "data"
    data.mkdir()
    keys = add_keys(data)
    settings = Settings(data_dir=data, feeds_dir=tmp_path / "no-feeds")
    with TestClient(create_app(settings, graph_dir=str(graph_db.server.data_dir), load_models=False)) as c:
        r = c.post("/fhir/r4/Bundle", content=BUNDLE.read_bytes(),
                   headers={"content-type": FHIR, "X-API-Key": keys["integration"]})
        assert r.status_code == 503 and r.headers["retry-after"] == "5"
        assert r.headers["content-type"].startswith(FHIR) and r.json()["issue"][0]["code"] == "transient"
        # a client's mistake is still its own, not a 503
        r = c.post("/fhir/r4/Patient", content=b"{", headers={"content-type": FHIR,
                                                             "X-API-Key": keys["integration"]})
        assert r.status_code == 400

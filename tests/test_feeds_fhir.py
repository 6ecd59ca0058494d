"""FHIR R4 into the feed (feeds.fhir): R4B validation, OperationOutcome answers, the durable append against the
real Valkey server, the mapping to feed messages, and a hypothesis fuzz of invalid payloads."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feeds.buffer import BufferTarget
from feeds.fhir import accept, parse_entry, validate
from feeds.hl7v2 import FeedError

BUNDLE = Path(__file__).resolve().parents[1] / "samples" / "fhir" / "bundle_inpatient.json"


@pytest.fixture(scope="module")
def buffer(valkey):
    return BufferTarget(None, str(valkey.data_dir)).connect()


def bundle() -> dict:
    return json.loads(BUNDLE.read_text())


def test_the_sample_bundle_maps_to_the_graph_and_texts():
    m = parse_entry(BUNDLE.read_bytes())
    ops = {op: row for op, row in m.ops}
    assert ops["patient"]["pid"] == "DEMO-FP001"
    assert ops["encounter"]["status"] == "admitted" and ops["encounter"]["ward"] == "GI-0302-02"
    assert (ops["lab"]["value_num"], ops["lab"]["ref_range"], ops["lab"]["abnormal"]) == (98.0, "115-150", "L")
    assert ops["charge"]["amount"] == 280.0 and ops["charge"]["eid"] == "DEMO-FV001"
    assert any("胃镜" in d.text for d in m.documents) and all(d.encounter_id == "DEMO-FV001" for d in m.documents)
    # versions follow meta.lastUpdated
    assert ops["lab"]["v"].startswith("2026-03-08T03:00:00.000000Z|Observation/")


def test_r4_encounter_class_is_accepted():  # R5 models would refuse an R4 Encounter.class Coding
    enc = next(e["resource"] for e in bundle()["entry"] if e["resource"]["resourceType"] == "Encounter")
    assert validate(json.dumps(enc), "Encounter")["class"]["code"] == "IMP"


@pytest.mark.parametrize("payload, status, words", [
    (b"{not json", 400, "not json"),
    (b"[1, 2]", 422, "not a fhir resource"),
    (json.dumps({"resourceType": "Practitioner", "id": "x"}).encode(), 422, "not accepted"),
    (json.dumps({"resourceType": "Patient", "birthDate": "not-a-date"}).encode(), 422, "birthdate"),
    (json.dumps({"resourceType": "Encounter"}).encode(), 422, "class"),
    (json.dumps({"resourceType": "Bundle", "type": "searchset"}).encode(), 422, "batch or transaction"),
    (json.dumps({"resourceType": "Bundle", "type": "batch",
                 "entry": [{"resource": {"resourceType": "Patient"}}] * 1001}).encode(), 413, "limit"),
    (json.dumps({"resourceType": "Bundle", "type": "batch",
                 "entry": [{"resource": {"resourceType": "Account"}}]}).encode(), 422, "account"),
])
def test_invalid_payloads_get_an_operation_outcome_and_a_dead_letter(buffer, payload, status, words):
    before = buffer.client.xlen(buffer.target.dead_stream)
    code, body = accept(payload, None, buffer)
    assert code == status and body["resourceType"] == "OperationOutcome"
    assert words in body["issue"][0]["diagnostics"].lower()
    assert buffer.client.xlen(buffer.target.dead_stream) == before + 1


def test_wrong_type_for_the_endpoint(buffer):
    code, body = accept(json.dumps({"resourceType": "Patient", "id": "p"}), "Encounter", buffer)
    assert code == 422 and "does not match" in body["issue"][0]["diagnostics"]


def test_huge_payload_is_refused_before_parsing(buffer):
    code, _ = accept(b"{" + b" " * 2048 + b"}", None, buffer, max_bytes=1024)
    assert code == 413


def test_stored_before_201(buffer):
    code, body = accept(BUNDLE.read_bytes(), "Bundle", buffer)
    assert code == 201 and body["issue"][0]["severity"] == "information"
    entry = body["id"].replace(".", "-")
    stored = buffer.client.xrange(buffer.target.stream, entry, entry)
    assert stored and stored[0][1][b"raw"] == BUNDLE.read_bytes() and stored[0][1][b"source"] == b"fhir"


_TYPES = ["Patient", "Encounter", "Observation", "DocumentReference", "Composition", "Condition",
          "MedicationRequest", "ChargeItem", "Bundle", "Account", "", None, 3]
_json = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=10)),
                     lambda c: st.one_of(st.lists(c, max_size=3), st.dictionaries(st.text(max_size=8), c, max_size=3)),
                     max_leaves=10)


@settings(max_examples=1500, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(st.sampled_from(_TYPES), st.dictionaries(st.sampled_from(
    ["id", "status", "gender", "birthDate", "code", "subject", "entry", "type", "valueQuantity", "period", "class",
     "content", "section", "priceOverride", "meta"]), _json, max_size=6), st.booleans())
def test_fuzz_payloads(rtype, fields, from_sample):
    data = copy.deepcopy(bundle()) if from_sample else {}
    data.update(fields)
    if rtype is not None:
        data["resourceType"] = rtype
    raw = json.dumps(data).encode()
    try:
        m = parse_entry(raw)
    except FeedError as exc:
        assert exc.reason
        return
    assert m.source == "fhir"

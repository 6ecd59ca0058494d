"""A clerk's day against a real `medkg serve`: upload the sample bill -> its claim -> a correction with If-Match
-> a stale ETag gets 412 -> the history shows who, old, new and why -> the graph holds the corrected value;
page images, review decisions, list filters and paging, and a bill job through the Beam pipeline."""

from __future__ import annotations

import time

import pytest
from api_helpers import ROOT

pytestmark = pytest.mark.slow
BILL = ROOT / "samples" / "bill.jpg"
ITEMISED = ROOT / "samples" / "itemised.jpg"


@pytest.fixture(scope="module")
def clerk(api):
    with api.client("clerk") as c:
        yield c


@pytest.fixture(scope="module")
def uploaded(clerk):
    r = clerk.post("/v1/bills", files={"files": ("bill.jpg", BILL.read_bytes(), "image/jpeg")})
    assert r.status_code == 200, r.text
    [claim] = r.json()["claims"]
    return claim


def _graph_claim(graph_db, claim_id: str) -> dict:
    with graph_db.driver.session(database=graph_db.database) as s:
        head = s.run("MATCH (c:Claim {claim_id: $id}) RETURN properties(c) AS c", id=claim_id).single()["c"]
        items = {r["n"]: r["amount"] for r in s.run(
            "MATCH (:Claim {claim_id: $id})-[:HAS_ITEM]->(i:LineItem) RETURN i.line_no AS n, i.amount AS amount",
            id=claim_id)}
    return {**head, "items": items}


def test_an_upload_answers_with_its_claim_each_field_with_its_reading(uploaded):
    assert uploaded["doc_type"] == "inpatient_e_receipt"
    assert uploaded["status"] == "pending" and uploaded["version"] == 1 and uploaded["etag"] == '"v1"'
    payer = uploaded["header"]["payer"]
    assert {"value", "raw", "confidence", "box", "needs_review"} <= payer.keys()
    assert len(payer["box"]) == 4
    assert uploaded["items"] and all("amount" in it["fields"] for it in uploaded["items"])
    assert uploaded["total_figures"]["value"]


def test_correction_under_if_match_then_stale_etag_then_history_then_graph(api, clerk, uploaded, graph_db):
    cid = uploaded["claim_id"]
    got = clerk.get(f"/v1/claims/{cid}")
    etag = got.headers["ETag"]
    old_payer = got.json()["header"]["payer"]["value"]
    old_amount = got.json()["items"][0]["fields"]["amount"]["value"]
    new_amount = "754.21" if old_amount != "754.21" else "754.22"

    assert clerk.patch(f"/v1/claims/{cid}", json={"changes": [{"field": "header.payer", "value": "x"}],
                                                 "reason": "r"}).status_code == 428
    first = clerk.patch(f"/v1/claims/{cid}", headers={"If-Match": etag},
                        json={"changes": [{"field": "header.payer", "value": "更正后姓名"},
                                          {"field": "items[0].amount", "value": new_amount}],
                              "reason": "the payer's name was misread"})
    assert first.status_code == 200, first.text
    assert first.headers["ETag"] != etag
    body = first.json()
    assert body["header"]["payer"]["value"] == "更正后姓名" and body["header"]["payer"]["confidence"] == 1.0
    # the checks ran again: the items no longer add up to the total, so the amounts need review
    assert body["needs_review"] and any(f["severity"] == "error" for f in body["findings"])

    stale = clerk.patch(f"/v1/claims/{cid}", headers={"If-Match": etag},
                        json={"changes": [{"field": "header.payer", "value": "another clerk"}], "reason": "late"})
    assert stale.status_code == 412
    assert stale.json()["code"] == "etag-mismatch" and stale.headers["ETag"] == first.headers["ETag"]

    history = clerk.get(f"/v1/claims/{cid}/history").json()
    by_field = {h["field"]: h for h in history}
    assert by_field["header.payer"]["old"] == old_payer and by_field["header.payer"]["new"] == "更正后姓名"
    assert by_field["header.payer"]["user"] == "test-clerk" and by_field["header.payer"]["role"] == "clerk"
    assert by_field["header.payer"]["reason"] == "the payer's name was misread" and by_field["header.payer"]["at"]
    assert by_field["items[0].amount"]["old"] == old_amount and by_field["items[0].amount"]["new"] == new_amount

    in_graph = _graph_claim(graph_db, cid)
    assert in_graph["payer"] == "更正后姓名"
    assert in_graph["items"][0] == new_amount
    assert clerk.get(f"/v1/claims/{cid}").json()["header"]["payer"]["value"] == "更正后姓名"


def test_bad_corrections_are_problems(clerk, uploaded):
    cid = uploaded["claim_id"]
    etag = clerk.get(f"/v1/claims/{cid}").headers["ETag"]
    for change, code in (({"field": "total_figures", "value": "12,3.4x"}, "bad-value"),
                         ({"field": "items[999].amount", "value": "1"}, "no-such-field"),
                         ({"field": "header.issue_date", "value": "2019-13-45"}, "bad-value")):
        r = clerk.patch(f"/v1/claims/{cid}", headers={"If-Match": etag}, json={"changes": [change], "reason": "t"})
        assert r.status_code == 422 and r.json()["code"] == code, r.text
    r = clerk.patch(f"/v1/claims/{cid}", headers={"If-Match": etag},
                    json={"changes": [{"field": "claim_id", "value": "x"}], "reason": "t"})
    assert r.status_code == 422 and r.json()["code"] == "validation"
    assert clerk.get(f"/v1/claims/{cid}").headers["ETag"] == etag  # nothing was half-applied


def test_page_image_and_missing_page(clerk, uploaded):
    cid = uploaded["claim_id"]
    r = clerk.get(f"/v1/claims/{cid}/pages/0")
    assert r.status_code == 200 and r.headers["content-type"] == "image/png" and r.content[:4] == b"\x89PNG"
    assert clerk.get(f"/v1/claims/{cid}/pages/7").status_code == 404


def test_list_filters_and_cursor_paging(clerk, uploaded):
    cid = uploaded["claim_id"]
    assert cid in [c["claim_id"] for c in clerk.get("/v1/claims", params={"hospital": uploaded["hospital"]}).json()["items"]]
    assert cid not in [c["claim_id"] for c in clerk.get("/v1/claims", params={"hospital": "无此医院"}).json()["items"]]
    assert cid in [c["claim_id"] for c in clerk.get("/v1/claims", params={
        "doc_type": "inpatient_e_receipt", "since": "2000-01-01", "until": "2099-12-31"}).json()["items"]]
    seen, cursor = [], None
    while True:
        page = clerk.get("/v1/claims", params={"limit": 1, **({"cursor": cursor} if cursor else {})}).json()
        seen += [c["claim_id"] for c in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(seen) == len(set(seen)) and cid in seen


def test_a_bill_job_runs_the_pipeline_and_its_claims_are_readable(clerk, uploaded):
    r = clerk.post("/v1/bills", params={"async": "true"},
                   files=[("files", ("a.jpg", ITEMISED.read_bytes(), "image/jpeg")),
                          ("files", ("b.jpg", BILL.read_bytes(), "image/jpeg"))])
    assert r.status_code == 202, r.text
    job = r.json()
    assert r.headers["Location"] == f"/v1/jobs/{job['job_id']}" and job["files"] == 2
    deadline = time.monotonic() + 600  # a bound on waiting, not a timing assertion
    while job["state"] in ("queued", "running") and time.monotonic() < deadline:
        time.sleep(1)
        job = clerk.get(f"/v1/jobs/{job['job_id']}").json()
    assert job["state"] == "succeeded", job
    assert job["counts"]["inputs"] == 2 and job["counts"]["processed"] == 2 and job["dead_letters"] == []
    assert uploaded["claim_id"] in job["claim_ids"] and len(job["claim_ids"]) == 2
    for cid in job["claim_ids"]:
        assert clerk.get(f"/v1/claims/{cid}").status_code == 200
    # the bill uploaded again did not undo the correction made on it
    assert clerk.get(f"/v1/claims/{uploaded['claim_id']}").json()["header"]["payer"]["value"] == "更正后姓名"


def test_approve_closes_corrections(clerk, uploaded):
    cid = uploaded["claim_id"]
    etag = clerk.get(f"/v1/claims/{cid}").headers["ETag"]
    assert clerk.post(f"/v1/claims/{cid}/approve", headers={"If-Match": '"v999"'},
                      json={"reason": "ok"}).status_code == 412
    r = clerk.post(f"/v1/claims/{cid}/approve", headers={"If-Match": etag}, json={"reason": "checked against scan"})
    assert r.status_code == 200 and r.json()["status"] == "approved"
    assert clerk.post(f"/v1/claims/{cid}/reject", json={"reason": "x"}).status_code == 409
    assert clerk.patch(f"/v1/claims/{cid}", headers={"If-Match": r.headers["ETag"]},
                       json={"changes": [{"field": "header.payer", "value": "y"}], "reason": "z"}).status_code == 409
    assert clerk.get(f"/v1/claims/{cid}/history").json()[-1]["new"] == "approved"
    assert cid in [c["claim_id"] for c in clerk.get("/v1/claims", params={"status": "approved"}).json()["items"]]


def test_bad_uploads(clerk):
    r = clerk.post("/v1/bills", files={"files": ("x.jpg", b"", "image/jpeg")})
    assert r.status_code == 422 and r.json()["code"] == "empty"
    r = clerk.post("/v1/bills", files={"files": ("x.pdf", b"%PDF-1.4 broken", "application/pdf")})
    assert 400 <= r.status_code < 500 and r.headers["content-type"].startswith("application/problem+json")

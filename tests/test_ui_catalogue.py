"""The bureau's catalogue and hospital register reach the clerk (issues 17, 18, 19, 21): a server started with
``MEDKG_HOSPITAL_REGISTER`` names each uploaded bill's hospital with its code and level; with ``MEDKG_CATALOGUE`` (a tiny
CSV written here: our own invented codes and names, a few near-namesakes so that matches have runners-up) matches
an uploaded bill's line items to it; the claim page shows each match and its alternatives, and picking one saves
it as a correction (``items[n].match_code``, If-Match) that the history shows. The bill is rendered by
``ocr.synth`` with its items named from the same invented catalogue."""

from __future__ import annotations

import csv
import random
from pathlib import Path

import pytest
from api_helpers import start_api
from test_ui_review import CHROMIUM, browser, open_claim, png, shoot, shots, signed_in  # noqa: F401 - fixtures

pytestmark = pytest.mark.slow

# (code, name): each billed name has a near-namesake with another code (its runner-up in the catalogue)
BILLED = [("TX0001", "静脉输液治疗"), ("TX0002", "血常规检测"), ("TX0003", "胸部平片检查"), ("TX0004", "住院诊查费用")]
NAMESAKES = [("TX1001", "静脉输液治疗加收"), ("TX1002", "血常规检测急诊"), ("TX1003", "胸部平片检查床旁"),
             ("TX1004", "住院诊查费用夜间")]


def write_catalogue(path: Path) -> Path:
    with open(path, "w", encoding="utf-8-sig", newline="") as f:
        w = csv.writer(f)
        w.writerow(["项目编码", "项目名称", "费用类别"])
        for code, name in BILLED + NAMESAKES:
            w.writerow([code, name, "治疗费"])
    return path


def write_rules(path: Path) -> Path:
    """The bureau's restriction rules (reconciliation): one invented rule per billed code, a disease the bill's
    patient has no record of (the finding's evidence says so)."""
    with open(path, "w", encoding="utf-8-sig", newline="") as f:
        w = csv.writer(f)
        w.writerow(["项目编码", "项目名称", "限定疾病"])
        for code, name in BILLED:
            w.writerow([code, name, "糖尿病"])
    return path


def rendered_bill(seed: int) -> dict:
    """An itemised bill (a few lines) whose items are named from ``BILLED``."""
    from ocr.synth.catalogue import CatalogueNames
    from ocr.synth.content import sample_bill
    from ocr.synth.fonts import all_faces
    from ocr.synth.layout import REFERENCE_WIDTH
    from ocr.synth.page import _pixels
    from ocr.synth.templates import build

    faces = all_faces(None)
    names = CatalogueNames({}, tuple(BILLED)).drawable(faces)
    r = random.Random(seed)
    bill = sample_bill(r, "itemised", n_items=(4, 6), names=names, names_r=random.Random(f"cat:{seed}"))
    layout = build(bill, r, faces, REFERENCE_WIDTH)
    page = _pixels(layout, bill.kind, bill.fields(), faces, REFERENCE_WIDTH, seed, (seed,), degrade=False, photo=False)
    return {"image": page.image, "names": [it["name"] for it in bill.fields()["items"]], "hospital": bill.hospital}


JOB_SEED = 31  # a bill no other test uploads (a stored claim id keeps its stored document)


def write_register(path: Path) -> dict[str, str]:
    """The bureau's hospital register: the hospitals of the bills uploaded here (invented codes, level 3) and a
    sibling of each one character off; → hospital name: code."""
    codes = {}
    with open(path, "w", encoding="utf-8-sig", newline="") as f:
        w = csv.writer(f)
        w.writerow(["机构编码", "机构名称", "医院等级"])
        for seed in (11, 12, 13, JOB_SEED):
            name = rendered_bill(seed)["hospital"]
            codes[name] = f"HX{seed:04d}"
            w.writerow([codes[name], name, "三级甲等"])
            w.writerow([f"HY{seed:04d}", name[:-2] + "分院", "二级"])
    return codes


@pytest.fixture(scope="module")
def register_codes(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    path = tmp_path_factory.mktemp("register") / "register.csv"
    return path, write_register(path)


@pytest.fixture(scope="module")
def cat_api(request, graph_db, tmp_path_factory, register_codes):
    data = tmp_path_factory.mktemp("cat-api")
    catalogue = write_catalogue(data / "catalogue.csv")
    server = start_api(data / "state", Path(graph_db.server.data_dir), MEDKG_CATALOGUE=str(catalogue),
                       MEDKG_RECONCILE_RULES=str(write_rules(data / "rules.csv")),
                       MEDKG_HOSPITAL_REGISTER=str(register_codes[0]))
    request.addfinalizer(server.stop)
    return server


@pytest.fixture(scope="module")
def matched_claim(cat_api):
    """An uploaded bill's claim with at least one line matched to a billed name that has alternatives."""
    with cat_api.client("clerk") as clerk:
        for seed in (11, 12, 13):
            bill = rendered_bill(seed)
            r = clerk.post("/v1/bills", files={"files": (f"cat-{seed}.png", png(bill["image"]), "image/png")})
            assert r.status_code == 200, r.text
            for claim in r.json()["claims"]:
                # the register names the hospital, with its code and level (or the claim says it could not)
                code = claim["header"].get("hospital_code")
                assert (code and code["value"] == f"HX{seed:04d}" and claim["header"]["hospital_level"]["value"] == "3"
                        or any(f["rule"] == "hospital.not_in_register" for f in claim["findings"])), claim["header"]
                alts = clerk.get(f"/v1/claims/{claim['claim_id']}/alternatives").json()["alternatives"]
                hits = [i for i, it in enumerate(claim["items"])
                        if it["match"] and it["match"]["code"] in dict(BILLED) and alts.get(str(it["line_no"]))]
                if hits:
                    return claim, hits[0], alts
    raise AssertionError("no rendered bill had a line matched to the catalogue")


def test_an_upload_with_a_catalogue_set_returns_items_with_their_matches(cat_api, matched_claim):
    claim, i, alts = matched_claim
    matched = [it for it in claim["items"] if it["match"]]
    assert matched
    codes = dict(BILLED) | dict(NAMESAKES)
    for it in matched:
        m = it["match"]
        assert codes[m["code"]] == m["name"] and 0 <= m["score"] <= 100 and m["method"] in ("exact", "fuzzy")
    it = claim["items"][i]
    # the runners-up: other catalogue entries (its near-namesake among them), never the match itself
    runners = alts[str(it["line_no"])]
    assert it["match"]["code"] not in {a["code"] for a in runners}
    assert {a["code"] for a in runners} <= set(codes)


def test_a_bill_job_matches_its_items_and_hospital_through_the_pipeline(cat_api):
    import time

    bill = rendered_bill(JOB_SEED)
    with cat_api.client("clerk") as clerk:
        r = clerk.post("/v1/bills", params={"async": "true"},
                       files={"files": ("cat-job.png", png(bill["image"]), "image/png")})
        assert r.status_code == 202, r.text
        job_id = r.json()["job_id"]
        deadline = time.monotonic() + 300  # a bound, not a timing assertion
        while (job := clerk.get(f"/v1/jobs/{job_id}").json())["state"] in ("queued", "running"):
            assert time.monotonic() < deadline, job
            time.sleep(0.5)
        assert job["state"] == "succeeded" and job["claim_ids"], job
        claim = clerk.get(f"/v1/claims/{job['claim_ids'][0]}").json()
    assert any(it["match"] and it["match"]["code"] in dict(BILLED) for it in claim["items"]), claim["items"]
    assert claim["header"]["hospital"]["value"] == bill["hospital"], claim["header"]["hospital"]
    assert claim["header"]["hospital_code"]["value"] == f"HX{JOB_SEED:04d}"  # MEDKG_HOSPITAL_REGISTER reached the job
    # a clerk names another hospital of the register: its code and level follow; one it lacks: no stale code
    sibling = bill["hospital"][:-2] + "分院"
    with cat_api.client("clerk") as clerk:
        for name, code, level in ((sibling, f"HY{JOB_SEED:04d}", "2"), ("某某县人民医院", None, None)):
            etag = clerk.get(f"/v1/claims/{claim['claim_id']}").headers["ETag"]
            r = clerk.patch(f"/v1/claims/{claim['claim_id']}", headers={"If-Match": etag},
                            json={"changes": [{"field": "header.hospital", "value": name}], "reason": "stamp"})
            assert r.status_code == 200, r.text
            header, rules = r.json()["header"], {f["rule"] for f in r.json()["findings"]}
            assert header["hospital"]["value"] == name
            assert (header.get("hospital_code") or {}).get("value") == code
            assert (header.get("hospital_level") or {}).get("value") == level
            assert ("hospital.not_in_register" in rules) == (code is None)


def test_a_match_code_must_be_one_of_the_lines_alternatives_and_needs_if_match(cat_api, matched_claim):
    claim, i, _ = matched_claim
    with cat_api.client("clerk") as clerk:
        got = clerk.get(f"/v1/claims/{claim['claim_id']}")
        etag = got.headers["ETag"]
        bad = clerk.patch(f"/v1/claims/{claim['claim_id']}", headers={"If-Match": etag},
                          json={"changes": [{"field": f"items[{i}].match_code", "value": "NOPE99"}], "reason": "x"})
        assert bad.status_code == 422 and bad.json()["code"] == "not-an-alternative", bad.text
        no_etag = clerk.patch(f"/v1/claims/{claim['claim_id']}",
                              json={"changes": [{"field": f"items[{i}].match_code", "value": "NOPE99"}], "reason": "x"})
        assert no_etag.status_code == 428
        same = clerk.patch(f"/v1/claims/{claim['claim_id']}", headers={"If-Match": etag},
                           json={"changes": [{"field": f"items[{i}].match_code",
                                              "value": claim["items"][i]["match"]["code"]}], "reason": "x"})
        assert same.status_code == 422 and same.json()["code"] == "not-an-alternative", same.text
        assert clerk.get(f"/v1/claims/{claim['claim_id']}").headers["ETag"] == etag  # nothing was saved


def test_the_claim_page_shows_matches_alternatives_and_a_picked_one_is_saved_into_the_history(
        cat_api, matched_claim, browser, shots):  # noqa: F811 - the fixtures
    claim, i, alts = matched_claim
    cid = claim["claim_id"]
    line = claim["items"][i]
    pick = alts[str(line["line_no"])][0]
    page = signed_in(browser, cat_api, "clerk")
    try:
        open_claim(page, cat_api, cid)
        # never reconciled: a short note, no error; then run from the page
        page.wait_for_selector("#reconciliation[data-loaded=true]")
        assert page.locator("#reconciliation .note").inner_text() == "Not reconciled yet."
        page.click("#reconcile-now")
        page.wait_for_selector('#message:has-text("Reconciled:")')
        page.wait_for_selector("#reconciliation li")
        with cat_api.client("clerk") as clerk:
            findings = clerk.get(f"/v1/claims/{cid}/reconciliation").json()["findings"]
        assert findings
        # the reconciliation findings beside the check findings: rule, severity, the Chinese message, evidence
        shown = page.locator("#reconciliation li")
        assert shown.count() == len(findings)
        for k, f in enumerate(findings):
            text = shown.nth(k).inner_text()
            assert f["rule"] in text and f["severity"] in text and (f["message"] or f["detail"]) in text
        if any(f["evidence"] for f in findings):
            assert page.locator("#reconciliation .evidence dt").count() > 0
        cell = page.locator(f'[data-match-item="{i}"]')
        assert line["match"]["code"] in cell.locator(".match").inner_text()
        select = cell.locator("select")
        assert select.locator("option").count() == len(alts[str(line["line_no"])]) + 1
        select.select_option(pick["code"])
        page.wait_for_selector(f'[data-match-item="{i}"] .match:has-text("{pick["code"]}")')
        page.wait_for_selector(f'#history li:has-text("items[{i}].match_code")')
        history = page.locator("#history").inner_text()
        assert f"{line['match']['code']} → {pick['code']}" in history
        page.locator("#item-fields").scroll_into_view_if_needed()
        shoot(page, shots / "claim-catalogue.png")
        page.locator("#reconciliation details").first.evaluate("d => { d.open = true; }")
        page.locator("#reconciliation").scroll_into_view_if_needed()
        shoot(page, shots / "claim-reconciliation.png")
    finally:
        page.context.close()
    with cat_api.client("clerk") as clerk:
        stored = clerk.get(f"/v1/claims/{cid}").json()
        assert stored["items"][i]["match"]["code"] == pick["code"]
        assert stored["items"][i]["match"]["method"] == "clerk"
        trail = clerk.get(f"/v1/claims/{cid}/history").json()
        assert [(h["field"], h["old"], h["new"]) for h in trail][-1] == (
            f"items[{i}].match_code", line["match"]["code"], pick["code"])

"""The review desk in a real browser: Debian's Chromium, headless, driven by Playwright against a real `medkg serve`
on a loopback port (the API tests' server). Bills are rendered by ``ocr.synth`` with one printed amount planted
wrong (a digit changed in the laid-out page before it is drawn), uploaded, read by the real OCR and checked by the
product's checks; the clerk finds the planted amount flagged with its box and corrects it from the keyboard.

Screenshots of the queue, a claim and a patient page go to ``docs/ui-*.png`` when ``MEDKG_UI_SCREENSHOTS=1`` (the
committed ones were made so), else to the test's temporary folder."""

from __future__ import annotations

import json
import os
import random
import re
import statistics
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest
from api_helpers import ROOT

CHROMIUM = "/usr/bin/chromium"
if not Path(CHROMIUM).exists():
    pytest.skip(f"browser tests need Debian's chromium at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="browser tests need the playwright package (pip)")

pytestmark = pytest.mark.slow
ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-default-apps", "--no-first-run", "--disable-features=Translate,MediaRouter", "--mute-audio"]
DESKTOP = {"width": 1366, "height": 768}
TABLET = {"width": 820, "height": 1180}
PATIENT_TEXT = ("患者因咳嗽、咳痰3天入院。患者无发热，否认高血压病史，否认糖尿病。查体：双肺呼吸音粗。"
                "诊断：社区获得性肺炎。给予头孢曲松抗感染治疗。其父有冠心病史。")


# --- bills with a planted misread ----------------------------------------------------------------------------

def planted_bill(seed: int, kind: str) -> dict | None:
    """A rendered bill whose printed amount of one line is one digit off its ground truth: the page shows
    ``wrong`` where the bill's arithmetic needs ``truth``. None when no line amount is printed once only."""
    from ocr.synth.content import sample_bill
    from ocr.synth.fonts import all_faces
    from ocr.synth.layout import REFERENCE_WIDTH
    from ocr.synth.page import _pixels
    from ocr.synth.templates import build

    faces = all_faces(None)
    r = random.Random(seed)
    bill = sample_bill(r, kind, names=None, names_r=random.Random(f"catalogue:{seed}"))
    layout = build(bill, r, faces, REFERENCE_WIDTH)
    texts = [it.text for it in layout.items]
    others = {bill.m(bill.total), *(bill.m(v) for _, v in bill.payments)}
    lines = [bill.m(v) for _, v in bill.categories] if kind != "itemised" else []
    lines += [bill.m(i.amount) for i in bill.items]
    truth = next((s for s in lines if texts.count(s) == 1 and s not in others and sum(c.isdigit() for c in s) >= 3),
                 None)
    if truth is None:
        return None
    digits = [j for j, ch in enumerate(truth) if ch.isdigit()]
    j = digits[-3]  # the units digit of the yuan: an amount off by a few yuan, as a misread 3/8 or 1/7 would be
    wrong = truth[:j] + str((int(truth[j]) + 5) % 10) + truth[j + 1:]
    at = texts.index(truth)
    layout.items[at] = replace(layout.items[at], text=wrong)
    page = _pixels(layout, bill.kind, bill.fields(), faces, REFERENCE_WIDTH, seed, (seed,), degrade=False, photo=False)
    return {"seed": seed, "kind": kind, "image": page.image, "truth": truth.replace(",", ""),
            "wrong": wrong.replace(",", ""), "items": bill.fields()["items"], "total": str(bill.total)}


def truth_of(bill: dict, claim: dict, path: str) -> str | None:
    """What the bill prints at ``path`` (what a clerk reads off the image), where the ground truth says."""
    m = re.fullmatch(r"items\[(\d+)\]\.(amount|quantity|unit_price)", path)
    if m and bill["kind"] == "itemised":
        # the printed line of the same name (and amount, where names repeat): the grid's order is the layout's
        fields = claim["items"][int(m[1])]["fields"]
        name = fields.get("name", {}).get("value")
        amount = fields.get("amount", {}).get("value")
        same = [t for t in bill["items"] if t["name"] == name]
        if len(same) > 1:
            same = [t for t in same if amount is not None and Decimal(t["amount"]) == Decimal(amount)]
        if len(same) == 1:
            t = same[0]
            return {"amount": t["amount"], "quantity": t["qty"], "unit_price": t["price"]}[m[2]]
        return None
    return bill["total"] if path == "total_figures" else None


def png(image) -> bytes:
    import cv2

    ok, buf = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    assert ok
    return buf.tobytes()


def upload_planted(clerk, bill: dict, repaired: bool = False) -> tuple[dict, int] | None:
    """Upload a planted bill; its claim and the index of the item that holds the planted amount (None: the
    structuring did not read the planted line as one item). With ``repaired``, also an item whose printed
    (wrong) amount the product repaired to the truth from the bill's own arithmetic (``claims.repair``)."""
    r = clerk.post("/v1/bills", files={"files": (f"planted-{bill['seed']}.png", png(bill["image"]), "image/png")})
    assert r.status_code == 200, r.text
    [claim] = r.json()["claims"]
    wrong, truth = Decimal(bill["wrong"]), Decimal(bill["truth"])

    def planted(f: dict | None) -> bool:
        if f is None or f["value"] is None:
            return False
        if Decimal(f["value"]) == wrong:
            return True
        return repaired and Decimal(f["value"]) == truth and f["note"].startswith("repaired") and \
            bill["wrong"] in f["raw"].replace(",", "")

    hits = [i for i, it in enumerate(claim["items"]) if planted(it["fields"].get("amount"))]
    return (claim, hits[0]) if len(hits) == 1 else None


def first_planted(clerk, seeds, kind="inpatient"):
    for seed in seeds:
        bill = planted_bill(seed, kind)
        if bill is None:
            continue
        got = upload_planted(clerk, bill)
        if got is not None:
            return bill, *got
    raise AssertionError(f"no seed of {seeds} gave a planted bill whose line was read")


# --- the browser -------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def clerk(api):
    with api.client("clerk") as c:
        yield c


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    if os.environ.get("MEDKG_UI_SCREENSHOTS") == "1":
        return ROOT / "docs"
    return tmp_path_factory.mktemp("ui-shots")


def shoot(page, path: Path, **kw) -> None:
    """A screenshot, stored as a 128-colour PNG (the committed ones stay small)."""
    import io

    from PIL import Image

    shot = Image.open(io.BytesIO(page.screenshot(**kw))).convert("RGB")
    shot.quantize(128, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)


def signed_in(browser, api, role: str, viewport=DESKTOP):
    """A browser tab signed in as ``role`` (the key put in sessionStorage as the sign-in page puts it)."""
    context = browser.new_context(viewport=viewport, locale="zh-CN")
    who = json.dumps({"key": api.keys[role], "name": f"test-{role}", "role": role})
    context.add_init_script(f"sessionStorage.setItem('medkg.desk', JSON.stringify({who}));")
    return watched(context.new_page())


ERRORS: list[str] = []  # script errors of every tab, shown by a failing wait


def watched(page):
    page.set_default_timeout(60_000)
    page.on("pageerror", lambda e: ERRORS.append(f"{page.url}: {e}"))
    return page


def ready(page, selector: str) -> None:
    try:
        page.wait_for_selector(selector)
    except sync_api.TimeoutError:
        raise AssertionError(f"{selector} not shown; script errors: {ERRORS[-5:]}; message: "
                             f"{page.locator('#message').inner_text()!r}") from None


def open_claim(page, api, claim_id: str):
    page.goto(f"{api.url}/ui/claims/{claim_id}")
    ready(page, ".claim[data-ready=true]")
    page.wait_for_function("() => document.getElementById('page-image').naturalWidth > 0")
    page.wait_for_selector("#verdict")


def active_path(page) -> str | None:
    return page.evaluate("document.activeElement && document.activeElement.dataset.path || null")


def keyboard_correct(page, target: str, value: str, limit: int = 200, enter: bool = True) -> int:
    """Tab through the flagged fields to ``target``, type ``value`` (Enter: save): the keys pressed."""
    keys = 0
    while active_path(page) != target:
        page.keyboard.press("Tab")
        keys += 1
        assert keys < limit, f"{target} is not reachable with Tab through the flagged fields"
    page.keyboard.type(value)
    if enter:
        page.keyboard.press("Enter")
    return keys + len(value) + int(enter)


def fields_to_fix(clerk, bill: dict, cid: str) -> dict[str, str]:
    """The fields of the checks that still fail whose value is not what the bill prints."""
    claim = clerk.get(f"/v1/claims/{cid}").json()
    report = clerk.post(f"/v1/claims/{cid}/check", json={"changes": []}).json()
    out = {}
    for r in report["results"]:
        for path in r["fields"] if r["passed"] is not True else ():
            truth = truth_of(bill, claim, path)
            m = re.fullmatch(r"items\[(\d+)\]\.(\w+)", path)
            f = claim["items"][int(m[1])]["fields"].get(m[2]) if m else claim.get(path)
            now = f and f["value"]
            if truth is not None and (now is None or Decimal(now) != Decimal(truth)):
                out[path] = truth
    return out


def graph_item_amount(graph_db, claim_id: str, line_no: int):
    with graph_db.driver.session(database=graph_db.database) as s:
        rec = s.run("MATCH (:Claim {claim_id: $id})-[:HAS_ITEM]->(i:LineItem {line_no: $n}) RETURN i.amount AS a",
                    id=claim_id, n=line_no).single()
    return rec["a"]


# --- the tests ---------------------------------------------------------------------------------------------------

def test_clerk_finds_the_planted_misread_flagged_corrects_it_from_the_keyboard_and_saves(
        api, clerk, browser, shots, graph_db):
    bill, claim, i = first_planted(clerk, range(100, 140))
    cid, path = claim["claim_id"], f"items[{i}].amount"
    assert claim["items"][i]["fields"]["amount"]["needs_review"]

    # sign in through the sign-in page, land on the queue
    context = browser.new_context(viewport=DESKTOP, locale="zh-CN")
    page = watched(context.new_page())
    page.goto(f"{api.url}/ui/claims/{cid}")
    page.wait_for_url("**/ui/login?next=*")
    page.fill("#api-key", api.keys["clerk"])
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/ui/claims/{cid}")
    page.goto(f"{api.url}/ui/queue")
    row = page.locator(f"tr[data-claim-id='{cid}']")
    row.wait_for()
    assert "failed check" in row.inner_text()
    assert page.locator("#counts").inner_text().strip()
    shoot(page, shots / "ui-queue.png")
    row.locator("a.open").click()
    page.wait_for_url(f"**/ui/claims/{cid}")
    ready(page, ".claim[data-ready=true]")
    page.wait_for_function("() => document.getElementById('page-image').naturalWidth > 0")
    page.wait_for_selector("#verdict")

    # flagged, with its reason and its box on the image
    tr = page.locator(f"#claim-form tr[data-path='{path}']")
    assert "flagged" in tr.get_attribute("class")
    assert "items add up to the total" in tr.locator(".why").inner_text()
    box = page.locator(f"#boxes polygon[data-path='{path}']")
    assert "flagged" in box.get_attribute("class")
    assert "fail" in page.locator("#verdict").inner_text()
    # selecting the field selects its box; clicking a box selects its field
    page.locator(f"input[data-path='{path}']").focus()
    assert "selected" in box.get_attribute("class")
    other = page.locator("#boxes polygon").first
    other_path = other.get_attribute("data-path")
    other.dispatch_event("click")
    assert active_path(page) == other_path
    page.locator("input[data-path]").first.focus()
    page.evaluate("document.activeElement.blur()")
    page.keyboard.press("j")  # j: the first flagged field
    assert active_path(page) is not None
    # the page re-runs the product's checks while typing: the right value makes the sum pass before saving
    page.locator(f"input[data-path='{path}']").focus()
    page.keyboard.type(bill["truth"])
    page.wait_for_function("() => document.querySelector(`[data-rule='total.items_sum']`).classList.contains('pass')")
    page.keyboard.press("Escape")  # undo; then do it as a clerk does, from the first flagged field
    page.wait_for_function("() => document.querySelector(`[data-rule='total.items_sum']`).classList.contains('fail')")
    shoot(page, shots / "ui-claim.png")
    page.evaluate("document.activeElement.blur()")
    page.keyboard.press("j")
    keys = keyboard_correct(page, path, bill["truth"]) + 1
    page.wait_for_selector(".message.ok")
    assert "Saved" in page.locator("#message").inner_text()
    assert "pass" in page.locator("[data-rule='total.items_sum']").get_attribute("class")
    print(f"\nclerk flow: {keys} keys to correct {bill['wrong']} -> {bill['truth']} ({path})")

    # the history and the graph hold the correction
    history = clerk.get(f"/v1/claims/{cid}/history").json()
    assert any(h["field"] == path and Decimal(h["old"]) == Decimal(bill["wrong"])
               and Decimal(h["new"]) == Decimal(bill["truth"]) and h["user"] == "test-clerk" for h in history)
    assert page.locator("#history li").count() >= 1
    assert Decimal(str(graph_item_amount(graph_db, cid, claim["items"][i]["line_no"]))) == Decimal(bill["truth"])
    # approve closes the claim: the page shows it and takes no more edits
    page.click("#approve")
    page.wait_for_selector("#claim-status.approved")
    assert clerk.get(f"/v1/claims/{cid}").json()["status"] == "approved"
    assert page.locator(f"input[data-path='{path}']").evaluate("e => e.readOnly")
    context.close()


def test_saving_a_stale_page_says_so_in_words_and_keeps_the_edits(api, clerk, browser):
    bill, claim, i = first_planted(clerk, range(140, 180))
    cid, path = claim["claim_id"], f"items[{i}].amount"
    page = signed_in(browser, api, "clerk")
    open_claim(page, api, cid)
    # another clerk saves a change meanwhile
    etag = clerk.get(f"/v1/claims/{cid}").headers["ETag"]
    r = clerk.patch(f"/v1/claims/{cid}", headers={"If-Match": etag},
                    json={"changes": [{"field": "header.payer", "value": "另一位职员改的"}], "reason": "other clerk"})
    assert r.status_code == 200, r.text
    page.locator(f"input[data-path='{path}']").focus()
    page.keyboard.type(bill["truth"])
    page.keyboard.press("Enter")
    msg = page.locator(".message.conflict")
    msg.wait_for()
    assert "someone else changed this claim; reload to see their change, your edits are kept" in msg.inner_text().lower()
    assert page.locator(f"input[data-path='{path}']").input_value() == bill["truth"]
    page.click("#reload-keep")
    page.wait_for_selector(".message.info")
    assert page.locator("input[data-path='header.payer']").input_value() == "另一位职员改的"
    assert page.locator(f"input[data-path='{path}']").input_value() == bill["truth"]
    page.locator(f"input[data-path='{path}']").focus()
    page.keyboard.press("Enter")
    page.wait_for_selector(".message.ok")
    fields = {h["field"]: h for h in clerk.get(f"/v1/claims/{cid}/history").json()}
    assert fields["header.payer"]["user"] == "test-clerk" and Decimal(fields[path]["new"]) == Decimal(bill["truth"])
    page.context.close()


@pytest.fixture(scope="module")
def patient(api):
    with api.client("integration") as c:
        r = c.post("/v1/records", json={"text": PATIENT_TEXT, "patient_id": "P-UI-1", "encounter_id": "E-UI-1",
                                        "recorded_on": "2026-03-02"})
    assert r.status_code == 201, r.text
    negated = [e for e in r.json()["entities"] if e["assertion"] == "negated"]
    assert negated, r.json()["entities"]
    return {"pid": "P-UI-1", "negated": negated, "entities": r.json()["entities"]}


def test_a_researcher_cannot_open_a_claim_or_a_patient_page(api, clerk, browser, patient):
    cid = clerk.get("/v1/claims", params={"limit": 1}).json()["items"][0]["claim_id"]
    page = signed_in(browser, api, "researcher")
    page.goto(f"{api.url}/ui/claims/{cid}")
    page.wait_for_selector(".message.error")
    assert "not open to your role" in page.locator("#message").inner_text()
    assert page.locator("#claim-form input[data-path]").count() == 0
    assert page.evaluate("document.getElementById('page-image').naturalWidth") == 0
    page.goto(f"{api.url}/ui/patients/{patient['pid']}")
    page.wait_for_selector(".message.error")
    assert "not open to your role" in page.locator("#message").inner_text()
    assert page.locator("mark.ent[data-type]").count() == 0
    assert "咳嗽" not in page.locator("#documents").inner_text()
    page.context.close()


def test_a_clinicians_patient_page_strikes_negated_findings_through(api, browser, shots, patient):
    page = signed_in(browser, api, "clinician")
    page.goto(f"{api.url}/ui/patients/{patient['pid']}")
    ready(page, ".patient[data-ready=true]")
    negated = page.locator("mark.ent[data-assertion=negated]")
    assert negated.count() >= 1
    for k in range(negated.count()):
        deco = negated.nth(k).evaluate("e => getComputedStyle(e).textDecorationLine")
        assert "line-through" in deco
    shown = {negated.nth(k).evaluate("e => e.firstChild.textContent") for k in range(negated.count())}
    assert {e["text"] for e in patient["negated"]} <= shown
    affirmed = page.locator("mark.ent[data-assertion=affirmed]")
    assert affirmed.count() >= 1 and "line-through" not in affirmed.first.evaluate(
        "e => getComputedStyle(e).textDecorationLine")
    # every entity is shown, nested ones inside their outer one (displaCy's "ent" style drops overlapping ones)
    assert page.locator("mark.ent[data-type]").count() >= len(patient["entities"])
    marks = page.locator("mark.ent[data-type]").count()
    html = page.evaluate("document.getElementById('documents').innerHTML.length")
    print(f"\npatient page: {marks} marks, {html} characters of markup, rendered in "
          f"{page.locator('.patient').get_attribute('data-render-ms')} ms in the browser")
    shoot(page, shots / "ui-patient.png", full_page=True)
    # filters go to the API: only negated mentions left
    page.check("input[name=assertion][value=negated]")
    page.click("#emr-filters button[type=submit]")
    page.wait_for_function("() => document.querySelectorAll('mark.ent[data-assertion=affirmed]').length === 0")
    assert page.locator("mark.ent[data-assertion=negated]").count() >= 1
    page.context.close()


def test_pages_fit_a_laptop_and_a_tablet_and_render_chinese_in_a_cjk_font(api, clerk, browser, patient):
    cid = clerk.get("/v1/claims", params={"limit": 1}).json()["items"][0]["claim_id"]
    for viewport in (DESKTOP, TABLET):
        page = signed_in(browser, api, "clerk", viewport)
        open_claim(page, api, cid)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= viewport["width"], f"horizontal scroll at {viewport}: {width}"
        assert page.locator("#viewer").bounding_box()["width"] > 200
        page.context.close()
    page = signed_in(browser, api, "clinician", TABLET)
    page.goto(f"{api.url}/ui/patients/{patient['pid']}")
    ready(page, ".patient[data-ready=true]")
    assert page.evaluate("document.documentElement.scrollWidth") <= TABLET["width"]
    # the Chinese text is drawn with an installed CJK font (no tofu): the fonts Chromium used for it
    fonts = platform_fonts(page, "#documents .sentence")
    assert fonts and all(re.search(r"CJK|WenQuanYi|Noto Sans SC|Source Han", f) for f in fonts), fonts
    page.context.close()


def platform_fonts(page, selector: str) -> list[str]:
    """The font families Chromium drew the first ``selector`` element's text with (DevTools protocol)."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("DOM.enable")
    cdp.send("CSS.enable")
    root = cdp.send("DOM.getDocument")["root"]["nodeId"]
    node = cdp.send("DOM.querySelector", {"nodeId": root, "selector": selector})["nodeId"]
    return [f["familyName"] for f in cdp.send("CSS.getPlatformFontsForNode", {"nodeId": node})["fonts"]]


def test_clerk_work_on_twenty_planted_bills(api, clerk, browser, shots):
    """Every planted error flagged (or, where the product repaired the misread from the bill's own arithmetic,
    shown as repaired); the keys pressed from opening the claim until all its checks pass: the planted amount
    first, then whatever the checks still find wrong (a real misread of the render), each typed as the bill
    prints it, Tab through the flagged fields to reach it, Enter to save. No mouse: clicks are 0."""
    kinds = ("inpatient", "outpatient", "itemised")
    bills, unread, seed = [], 0, 1000
    while len(bills) < 20:
        seed += 1
        assert seed < 1200, f"only {len(bills)} planted bills were read as claims"
        bill = planted_bill(seed, kinds[seed % 3])
        if bill is None:
            continue
        got = upload_planted(clerk, bill, repaired=True)
        if got is None:
            unread += 1
            continue
        bills.append((bill, *got))
    page = signed_in(browser, api, "clerk")
    page.goto(f"{api.url}/ui/queue")
    page.wait_for_selector(f"tr[data-claim-id='{bills[-1][1]['claim_id']}']")
    shoot(page, shots / "ui-queue.png")
    work = []
    for bill, claim, i in bills:
        cid, path = claim["claim_id"], f"items[{i}].amount"
        open_claim(page, api, cid)
        field = claim["items"][i]["fields"]["amount"]
        repaired = Decimal(field["value"]) == Decimal(bill["truth"])  # the product repaired the misread itself
        mark = "repaired" if repaired else "flagged"
        flagged = mark in page.locator(f"#claim-form tr[data-path='{path}']").get_attribute("class")
        boxed = mark in (page.locator(f"#boxes polygon[data-path='{path}']").get_attribute("class") or "")
        keys = 0
        if not repaired:
            keys = keyboard_correct(page, path, bill["truth"])
            page.wait_for_selector(".message.ok")
        rounds = 0
        while "All" not in page.locator("#verdict").inner_text() and rounds < 3:
            rounds += 1
            todo = fields_to_fix(clerk, bill, cid)
            if not todo:
                break
            page.evaluate("document.getElementById('message').hidden = true")
            for k, (p, value) in enumerate(todo.items()):
                keys += keyboard_correct(page, p, value, enter=k == len(todo) - 1)
            page.wait_for_selector(".message.ok")
        passed = "All" in page.locator("#verdict").inner_text()
        work.append({"seed": bill["seed"], "kind": bill["kind"], "shown_as": mark, "flagged": flagged, "boxed": boxed,
                     "keys": keys, "clicks": 0, "all_pass": passed, "more_fields": rounds})
    counts = [w["keys"] + w["clicks"] for w in work]
    fixed = [w["keys"] + w["clicks"] for w in work if w["shown_as"] == "flagged"]
    print(f"\nclerk work on {len(work)} planted bills ({unread} renders skipped: the planted line not read as one"
          f" item): keystrokes+clicks to all-checks-pass mean {statistics.mean(counts):.1f}, max {max(counts)};"
          f" {len(fixed)} flagged for review (mean {statistics.mean(fixed):.1f}, max {max(fixed)} keys),"
          f" {len(work) - len(fixed)} repaired by the checks themselves and shown as repaired (0 keys);"
          f" all checks pass on {sum(w['all_pass'] for w in work)}/{len(work)};"
          f" {sum(1 for w in work if w['more_fields'])} needed more than the planted field")
    for w in work:
        print("  ", w)
    assert all(w["flagged"] and w["boxed"] for w in work), [w for w in work if not (w["flagged"] and w["boxed"])]
    assert all(w["all_pass"] for w in work), [w for w in work if not w["all_pass"]]
    page.context.close()

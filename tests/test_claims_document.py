"""A 费用清单 over several pages: rendered with per-page ground truth, read by the real OCR engine, and
joined into one Claim whose items add up to the total on its last page."""

from __future__ import annotations

import json
import subprocess
import sys
import unicodedata
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest
from PIL import Image

from claims.checks import run_checks
from claims.document import structure_document
from claims.structure import structure_page
from core.records import DocumentType
from ocr.readers import PageImage
from ocr.synth import render_document

SEED = 4  # render_document seeds are their own space; 4 gives 3 photographed pages of 52 items
OTHER = 6  # another patient's list, printed with the same columns


def _key(text: str) -> str:
    return "".join(unicodedata.normalize("NFKC", text).split())


def _read(engine, doc, doc_id: str):
    return engine.read([PageImage(index=k, image=p.image, dpi=None) for k, p in enumerate(doc.pages)], doc_id)


@pytest.fixture(scope="module")
def document():
    return render_document(SEED, photo=True)


@pytest.fixture(scope="module")
def pages(ocr_engine, document):
    return _read(ocr_engine, document, "doc-a")


def test_document_ground_truth_per_page_and_whole(document):
    whole = document.meta["fields"]
    per_page = [p.meta["fields"] for p in document.pages]
    assert len(document.pages) >= 2 and [p.meta["page"] for p in document.pages] == list(range(len(document.pages)))
    assert 20 <= len(whole["items"]) <= 60
    assert Counter(json.dumps(i, sort_keys=True) for f in per_page for i in f["items"]) == \
        Counter(json.dumps(i, sort_keys=True) for i in whole["items"])
    assert all(f["total"] is None and not f["payments"] for f in per_page[:-1])
    assert per_page[-1]["total"] == whole["total"] == str(sum(Decimal(i["amount"]) for i in whole["items"]))
    for page in document.pages[1:]:  # a later page repeats the grid's header and the 住院号
        printed = {line.text for line in page.lines}
        assert {"项目名称", "金额"} <= printed and any(t.startswith("住院号") for t in printed)
    for page in document.pages[:-1]:  # only the last prints totals
        assert not any("合计" in line.text or "大写" in line.text for line in page.lines)


def test_pages_of_one_list_become_one_checked_claim(document, pages):
    (claim,) = structure_document(pages)
    whole = document.meta["fields"]
    assert claim.doc_type is DocumentType.itemised_list and claim.page == 0
    truth = Counter((_key(i["name"]), Decimal(i["amount"])) for i in whole["items"])
    got = Counter((_key(str(i.name.value)), i.amount.value) for i in claim.items)
    assert sum((truth & got).values()) >= len(whole["items"]) - 1 and len(claim.items) == len(whole["items"])
    assert [i.line_no for i in claim.items] == list(range(len(claim.items)))
    assert claim.total_figures.value == Decimal(whole["total"])
    assert {r.rule: r.passed for r in run_checks(claim).results}["total.items_sum"]
    assert any(f.rule == "structure.pages_joined" for f in claim.findings)
    # page by page, no page's items add up to a total: the first pages print none
    alone = [structure_page(p) for p in pages]
    assert alone[0].total_figures is None and any(f.rule == "structure.no_total" for f in alone[0].findings)


def test_pages_of_two_patients_stay_apart(ocr_engine, pages):
    other = _read(ocr_engine, render_document(OTHER), "doc-a")
    mixed = [pages[0], other[1].model_copy(update={"index": 1})]  # one file; page 0 has no total; same columns
    assert structure_page(mixed[0]).header["inpatient_no"].value != structure_page(mixed[1]).header["inpatient_no"].value
    claims = structure_document(mixed)
    assert len(claims) == 2
    assert all(any(f.rule == "structure.no_total" for f in c.findings) for c in claims)


def test_cli_bills_read_joins_a_multi_page_tiff(tmp_path, document):
    path = tmp_path / "list.tiff"
    first, *rest = [Image.fromarray(p.image) for p in document.pages]
    first.save(path, save_all=True, append_images=rest, compression="tiff_deflate")
    medkg = str(Path(sys.executable).with_name("medkg"))
    out = subprocess.run([medkg, "bills", "read", str(path)], capture_output=True, text=True, timeout=300, check=True)
    (claim,) = [json.loads(line) for line in out.stdout.splitlines()]
    assert claim["doc_type"] == "itemised_list"
    assert len(claim["items"]) == len(document.meta["fields"]["items"])
    assert Decimal(str(claim["total_figures"]["value"])) == Decimal(document.meta["fields"]["total"])

"""VAT invoices into Claims: rendered invoices through the real OCR, and the invoice's own arithmetic.

Seeds 7200+ are this file's (and structuring's tuning) range; the benchmark's VAT seeds are 9200+.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from claims.checks import run_checks, set_field
from claims.repair import verify_claim
from claims.structure import structure_page
from core.records import DocumentType, Page, TextLine
from ocr.synth import render_page

CASES = ((7200, False), (7210, True))  # 13% goods on a scan; exempt services (免税, ***) photographed at an angle
HEADER = {"发票代码": "bill_code", "发票号码": "bill_no", "校验码": "check_code"}


@pytest.fixture(scope="module")
def invoices(ocr_engine):
    out = []
    for seed, photo in CASES:
        page = render_page(seed, kind="vat_invoice", photo=photo)
        ocr = ocr_engine.read_image(page.image, doc_id=f"vat{seed}")
        out.append((page.meta["fields"], ocr))
    return out


def test_vat_invoice_structured_from_ocr(invoices):
    for truth, ocr in invoices:
        claim = structure_page(ocr)
        assert claim.doc_type is DocumentType.vat_invoice
        for label, key in HEADER.items():
            assert claim.header[key].value == "".join(truth["header"][label].split())
        assert claim.header["issue_date"].value.isoformat().replace("-", "") in "".join(
            ch for ch in truth["header"]["开票日期"] if ch.isdigit())
        assert claim.header["buyer"].value == truth["buyer"]["名称"]
        assert claim.header["seller"].value == truth["seller"]["名称"]
        assert claim.header["seller_tax_id"].value == truth["seller"]["纳税人识别号"]
        got = [(i.name.value, i.amount.value, i.tax_rate.value, i.tax.value) for i in claim.items]
        want = [(t["name"], Decimal(t["amount"]),
                 Decimal(0) if t["rate"] == "免税" else Decimal(t["rate"][:-1]) / 100, Decimal(t["tax"]))
                for t in truth["items"]]
        assert got == want
        assert claim.header["amount_excl_tax"].value == Decimal(truth["amount_excl_tax"])
        assert claim.header["tax"].value == Decimal(truth["tax"])
        assert claim.total_figures.value == claim.total_words.value == Decimal(truth["total"])
        results = {r.rule: r.passed for r in run_checks(claim).results}
        assert results["invoice.amount_plus_tax"] and results["invoice.tax_sum"] and results["total.items_sum"]
        assert not any(f.severity == "error" for f in claim.findings)


def test_amount_plus_tax_flags_a_wrong_tax(invoices):
    _, ocr = invoices[0]
    claim = structure_page(ocr, verify=False)
    tax = claim.header["tax"]
    wrong = set_field(claim, "header.tax", tax.model_copy(update={"value": tax.value + Decimal("7.00"),
                                                                  "raw": f"{tax.value + Decimal('7.00')}"}))
    checked = verify_claim(wrong, repair=False)
    assert any(f.rule == "invoice.amount_plus_tax" and f.severity == "error" for f in checked.findings)
    assert checked.header["tax"].needs_review and checked.header["amount_excl_tax"].needs_review
    assert checked.total_figures.needs_review


def _line(x0: float, y: float, text: str, w: float | None = None) -> TextLine:
    x1 = x0 + (w or 18 * len(text))
    return TextLine(box=((x0, y), (x1, y), (x1, y + 20), (x0, y + 20)), text=text, confidence=0.99)


def test_buyer_and_seller_and_an_exempt_line_from_geometry():
    """名称 twice (buyer above the grid, seller below it), an exempt line's 免税 and ***, no OCR."""
    rows = [
        (400, 10, "广东增值税电子普通发票"), (800, 60, "发票号码：12345678"),
        (60, 120, "名称：某某市人民医院"), (700, 120, "03<+4*/8-92>1<+*/6-55<>9"),
        (60, 200, "货物或应税劳务、服务名称"), (500, 200, "数量"), (600, 200, "单价"), (760, 200, "金额"),
        (900, 200, "税率"), (1040, 200, "税额"),
        (60, 240, "*医疗服务*健康体检费"), (520, 240, "1"), (600, 240, "300.00"), (760, 240, "300.00"),
        (900, 240, "免税"), (1050, 240, "***"),
        (60, 280, "*医疗仪器器械*电子血压计"), (520, 280, "2"), (600, 280, "88.49557522"), (760, 280, "176.99"),
        (900, 280, "13%"), (1040, 280, "23.01"),
        (100, 330, "合计"), (750, 330, "¥476.99"), (1030, 330, "¥23.01"),
        (60, 370, "价税合计(大写)"), (330, 370, "伍佰圆整"), (720, 370, "(小写)"), (850, 370, "¥500.00"),
        (60, 420, "名称：某某医疗器械有限公司"), (60, 450, "纳税人识别号：91440101MA59ABCD2K"),
    ]
    page = Page(doc_id="hand", index=0, width=1240, height=520, lines=tuple(_line(x, y, t) for x, y, t in rows))
    claim = structure_page(page)
    assert claim.doc_type is DocumentType.vat_invoice
    assert claim.header["buyer"].value == "某某市人民医院" and claim.header["seller"].value == "某某医疗器械有限公司"
    assert claim.header["seller_tax_id"].value == "91440101MA59ABCD2K" and "buyer_tax_id" not in claim.header
    exempt, taxed = claim.items
    assert (exempt.tax_rate.value, exempt.tax.value) == (Decimal(0), Decimal(0))
    assert (taxed.tax_rate.value, taxed.tax.value) == (Decimal("0.13"), Decimal("23.01"))
    assert claim.header["amount_excl_tax"].value == Decimal("476.99") and claim.total_words.value == Decimal(500)
    assert {f.rule for f in claim.findings if f.severity in ("error", "warning")} == set()

"""A receipt read the ways OCR varies its lines (issue 17): neighbouring lines joined across a gap, a label read
apart from its value, boxes a few pixels off and up to a quarter of a line up or down. Hand-made receipts (an
inpatient e-receipt with two column groups, an outpatient one with three groups of 数量/单位 columns) perturbed with
fixed seeds, so the cases are the same on every run; every item, header field, total and payment must read as on
the unperturbed page. The perturbations found the mechanisms of tests/test_claims_label_variants.py.
"""

from __future__ import annotations

import random
from datetime import date
from decimal import Decimal

import pytest

from claims.structure import structure_page
from core.records import TextLine
from tests.test_claims_real_mechanisms import line, page

ITEMS = [("床位费", "280.00"), ("检查费", "1334.20"), ("化验费", "512.00"), ("治疗费", "1200.50"), ("护理费", "96.00"),
         ("西药费", "3410.30")]
TOTAL = sum(Decimal(a) for _, a in ITEMS)  # 6833.00
WORDS = "陆仟捌佰叁拾叁元整"


def footer() -> list[TextLine]:
    return [line(60, 560, "合计（大写）"), line(250, 560, WORDS), line(800, 560, f"（小写）{TOTAL}"),
            line(60, 610, "医保统筹基金支付：5000.00", width=340), line(700, 610, "个人现金支付：1833.00", width=300),
            line(60, 700, "收款单位（章）：郑州大学第一附属医院", width=560), line(800, 700, "收款人：李四")]


def inpatient() -> list[TextLine]:
    lines = [line(500, 40, "河南省医疗住院收费票据（电子）", h=40),
             line(60, 120, "票据代码：41060121"), line(700, 120, "票据号码：0012345678"), line(1200, 120, "校验码：d2cf01"),
             line(60, 170, "交款人：张三"), line(700, 170, "开票日期：2021-04-30"),
             line(60, 220, "住院时间："), line(200, 220, "2021-04-23"), line(400, 220, "到 2021-04-30"),
             line(700, 220, "住院号：4938"), line(60, 270, "医保类型：城镇职工")]
    lines += [line(60 + 700 * g + 250 * j, 320, t) for g in range(2) for j, t in enumerate(["项目名称", "金额（元）", "备注"])]
    for k, (n, a) in enumerate(ITEMS):
        g, r = k % 2, k // 2
        lines += [line(60 + 700 * g, 370 + 45 * r, n), line(60 + 700 * g + 250, 370 + 45 * r, a)]
    return lines + footer()


def outpatient() -> list[TextLine]:
    lines = [line(500, 40, "上海市医疗门诊收费票据（电子）", h=40),
             line(60, 120, "票据代码：31060121"), line(600, 120, "票据号码：0012345678"), line(1100, 120, "校验码：d2cf01"),
             line(60, 170, "交款人：张三"), line(600, 170, "开票日期：2021-04-30"), line(60, 220, "医保类型：城镇职工")]
    titles, offsets = ["项目名称", "数量/单位", "金额（元）", "备注"], [0, 140, 270, 390]
    lines += [line(40 + 480 * g + x, 320, t) for g in range(3) for x, t in zip(offsets, titles)]
    for k, (n, a) in enumerate(ITEMS):
        g, r = k % 3, k // 3
        x, y = 40 + 480 * g, 370 + 45 * r
        lines += [line(x, y, n), line(x + 140, y, "1项"), line(x + 270, y, a)]
    return lines + footer()


def box(tl: TextLine) -> tuple[float, float, float, float]:
    (x0, y0), _, (x1, y1), _ = tl.box
    return x0, y0, x1, y1


def at(x0: float, y0: float, x1: float, y1: float, text: str) -> TextLine:
    return TextLine(box=((x0, y0), (x1, y0), (x1, y1), (x0, y1)), text=text, confidence=0.98)


def perturbed(lines: list[TextLine], rng: random.Random) -> list[TextLine]:
    """Labels split from their values (40 % of labelled lines), every box moved up to ±6 px across and ±¼ line
    up or down, and each line joined to the one before it on its row (30 %) when the gap is under 160 px."""
    split = []
    for tl in lines:
        x0, y0, x1, y1 = box(tl)
        text = tl.text
        if "：" in text and not text.endswith("：") and rng.random() < 0.4:
            k = text.index("：") + 1
            cut, gap = x0 + k * (x1 - x0) / len(text), rng.uniform(5, 40)
            split += [at(x0, y0, cut, y1, text[:k]), at(cut + gap, y0, x1 + gap, y1, text[k:])]
        else:
            split.append(tl)
    moved = []
    for tl in split:
        x0, y0, x1, y1 = box(tl)
        dx, dy = rng.uniform(-6, 6), rng.uniform(-0.25, 0.25) * (y1 - y0)
        moved.append(at(x0 + dx, y0 + dy, x1 + dx, y1 + dy, tl.text))
    rows: list[list[TextLine]] = []  # lines whose middles lie within 10 px, left to right
    for tl in sorted(moved, key=lambda tl: box(tl)[1] + box(tl)[3]):
        if rows and abs(sum(box(rows[-1][0])[1::2]) / 2 - sum(box(tl)[1::2]) / 2) < 10:
            rows[-1].append(tl)
        else:
            rows.append([tl])
    joined: list[TextLine] = []
    for row in rows:
        out: list[TextLine] = []
        for tl in sorted(row, key=lambda tl: box(tl)[0]):
            if out and rng.random() < 0.3:
                px0, py0, px1, py1 = box(out[-1])
                x0, y0, x1, y1 = box(tl)
                if 0 < x0 - px1 < 160:
                    out[-1] = at(px0, min(py0, y0), x1, max(py1, y1), out[-1].text + " " + tl.text)
                    continue
            out.append(tl)
        joined += out
    return joined


HEADER = {"bill_no": "0012345678", "check_code": "d2cf01", "issue_date": date(2021, 4, 30), "insurance_type": "城镇职工",
          "hospital": "郑州大学第一附属医院"}
STAY = {"admitted": date(2021, 4, 23), "discharged": date(2021, 4, 30), "inpatient_no": "4938"}


def read(lines: list[TextLine]):
    claim = structure_page(page(lines, width=1500, height=800), verify=False)
    return ({(i.name.value, i.amount.value) for i in claim.items}, {k: f.value for k, f in claim.header.items()},
            claim.total_figures.value, claim.total_words.value, {k: f.value for k, f in claim.payments.items()})


@pytest.mark.parametrize(("form", "header"), [(inpatient, {**HEADER, **STAY, "bill_code": "41060121"}),
                                              (outpatient, {**HEADER, "bill_code": "31060121"})],
                         ids=["inpatient", "outpatient"])
@pytest.mark.parametrize("seed", range(30))
def test_a_receipt_reads_the_same_however_ocr_cut_and_placed_its_lines(form, header, seed):
    items, head, figures, words, payments = read(perturbed(form(), random.Random(seed)))
    assert items == {(n, Decimal(a)) for n, a in ITEMS}
    assert {k: head.get(k) for k in header} == header
    assert figures == TOTAL and words == TOTAL
    assert payments == {"fund": Decimal("5000.00"), "cash": Decimal("1833.00")}

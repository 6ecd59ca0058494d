"""Item-grid mechanisms for dot-matrix forms and photo sheets (issue 17), on hand-made pages.

The pages copy what the real-like renderer's dot-matrix forms and the real tuning bills show: tractor-feed
perforations OCR'd as ``C`` beside the column titles, a figure only under 个人支付金额 beside the amount,
a quantity printed into the amount column (``7`` left of ``467.49``, ``1项4.32``), whole ``name:amount``
cells across a titled grid, and payment lines (现金：0.00) that are no items.
"""

from __future__ import annotations

from decimal import Decimal

from claims.structure import structure_page
from core.records import Page, TextLine

PX = 20


def line(x: float, y: float, text: str, h: float = 26, w: float | None = None) -> TextLine:
    w = PX * len(text) if w is None else w
    return TextLine(box=((x, y), (x + w, y), (x + w, y + h), (x, y + h)), text=text, confidence=0.98)


def page(lines) -> Page:
    return Page(doc_id="hand", index=0, width=1250, height=700, lines=tuple(lines))


def items_of(claim) -> set[tuple[str, Decimal]]:
    return {(i.name.value, i.amount.value) for i in claim.items}


def form_top() -> list[TextLine]:
    return [line(470, 70, "门诊收费专用票据"), line(930, 100, "NO.2852351047")]


def titles(y: float = 250) -> list[TextLine]:
    """Two groups of 项目/规格 | 数量 | 金额 | 个人支付金额, with perforations at both margins."""
    out = [line(20, y, "C"), line(1190, y, "C")]
    for x in (110, 630):
        out += [line(x, y, "项目/规格"), line(x + 200, y, "数量"), line(x + 260, y, "金额"), line(x + 390, y, "个人支付金额")]
    return out


def test_perforations_are_no_titles_and_a_self_pay_figure_does_not_pull_the_columns_over():
    lines = [*form_top(), *titles(),
             line(20, 300, "C"), line(120, 300, "诊察费"), line(312, 300, "1项"), line(370, 300, "51.2"),
             line(498, 300, "33.79"), line(640, 300, "西药费"), line(830, 300, "1项"), line(880, 300, "74.27"),
             line(1002, 300, "60.9"),
             line(120, 340, "检查费"), line(370, 340, "368.39"), line(498, 340, "187.88"),
             line(640, 340, "中成药费"), line(880, 340, "76.53"), line(1002, 340, "58.16"),
             line(140, 420, "合计(大写)"), line(760, 420, "570.39")]
    claim = structure_page(page(lines), verify=False)
    assert items_of(claim) == {("诊察费", Decimal("51.2")), ("西药费", Decimal("74.27")),
                               ("检查费", Decimal("368.39")), ("中成药费", Decimal("76.53"))}


def test_a_quantity_in_the_amount_column_is_never_run_into_the_amount():
    lines = [*form_top(), *titles(),
             line(150, 300, "化验费"), line(372, 300, "7", w=10), line(388, 300, "467.49", w=60),
             line(535, 300, "46.75"), line(645, 300, "中药饮片费"), line(880, 300, "1项4.32", w=70),
             line(1059, 300, "1.43"),
             line(140, 420, "合计(大写)")]
    claim = structure_page(page(lines), verify=False)
    assert items_of(claim) == {("化验费", Decimal("467.49")), ("中药饮片费", Decimal("4.32"))}
    by_name = {i.name.value: i for i in claim.items}
    assert by_name["化验费"].quantity.value == Decimal(7)
    assert by_name["中药饮片费"].quantity.raw == "1项"


def test_whole_item_cells_across_a_titled_grid_are_read_as_items_and_payments_are_not():
    lines = [*form_top(), *titles(295),
             line(124, 350, "化验费:405.45"), line(473, 350, "治疗93.74"), line(825, 350, "西药费:1,279.83"),
             line(125, 386, "中成药费:50.04"),
             line(140, 409, "现金：130.88"), line(917, 409, "银行卡：0.00"),
             line(115, 460, "合计（大写）"), line(880, 460, "1828.06")]
    claim = structure_page(page(lines), verify=False)
    assert items_of(claim) == {("化验费", Decimal("405.45")), ("治疗", Decimal("93.74")),
                               ("西药费", Decimal("1279.83")), ("中成药费", Decimal("50.04"))}


def test_a_readable_grid_is_not_replaced_by_a_stream_of_its_fragments():
    # a name with its spec in brackets, 0.1g*14, holds figures: the grid reads it whole
    lines = [line(470, 70, "门诊收费票据（电子）"), line(120, 250, "项目/规格"), line(700, 250, "金额"),
             line(120, 300, "(门)伊曲康唑胶囊(斯皮仁诺)[0.1g*14]"), line(700, 300, "102.41"),
             line(120, 380, "合计（大写）")]
    claim = structure_page(page(lines), verify=False)
    assert [(i.name.value, i.amount.value) for i in claim.items] == [("(门)伊曲康唑胶囊(斯皮仁诺)", Decimal("102.41"))]

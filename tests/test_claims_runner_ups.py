"""The recogniser's runner-up settles a tie between two fee categories (issue 17): 中晟药费 is one character off both
中成药费 and 中草药费, and the recogniser nearly read 成 there. Hand-made lines; the decoder's side is tested in
tests/test_ocr_geometry.py."""

from __future__ import annotations

from claims.layout import cells_of
from claims.structure import snap_category
from core.records import BillField, FieldKind, TextLine


def cell(text: str, alternatives=()):
    box = ((100, 100), (100 + 20 * len(text), 100), (100 + 20 * len(text), 126), (100, 126))
    return cells_of([TextLine(box=box, text=text, confidence=0.8, alternatives=alternatives)])[0]


def name(value: str) -> BillField:
    return BillField(name="name", value=value, raw=value, kind=FieldKind.text)


def test_the_runner_up_picks_one_of_two_categories():
    c = cell("中晟药费", ((1, "成", 0.31), (3, "贵", 0.05)))
    f = snap_category(name("中晟药费"), [c])
    assert f.value == "中成药费" and f.raw == "中晟药费"
    assert "runner-up there spells the fee category (not 中草药费)" in f.note


def test_the_runner_up_is_found_in_a_cell_that_holds_more_and_in_traditional_glyphs():
    # the amount before the name on a dot-matrix grid line, a space, and the runner-up as the recogniser emits it
    c = cell("126.00 中晟藥费", ((8, "成", 0.2),))
    assert snap_category(name("中晟药费"), [c]).value == "中成药费"
    c = cell("沪理费", ((0, "護", 0.4),))  # 護 is 护 in traditional glyphs: 护理费, not 病理费
    assert snap_category(name("沪理费"), [c]).value == "护理费"


def test_no_runner_up_or_one_for_neither_leaves_the_tie_unless_unsure_there():
    # read sure (no runner-up kept there): printed as read, as 医药费 and 成药费 are printed (one off 西药费 and 中药费)
    assert snap_category(name("中晟药费"), [cell("中晟药费")]).value == "中晟药费"
    assert snap_category(name("中晟药费")).value == "中晟药费"  # no cells at all: as before
    assert snap_category(name("医药费"), [cell("医药费")]).value == "医药费"
    # a runner-up somewhere else in the cell is not one for the name
    assert snap_category(name("中晟药费"), [cell("成 中晟药费", ((0, "成", 0.3),))]).value == "中晟药费"


def test_an_unsure_character_one_off_a_national_and_a_regional_category_is_the_national_one():
    """render_reallike e-receipts read in BF16: 检室费 and 诊骤费 under a stamp, the recogniser unsure of 室 and 骤 with
    runner-ups that spell no category. 检查费, not the regional 检验费; 诊察费, not 诊疗费 or 诊查费."""
    f = snap_category(name("检室费"), [cell("检室费", ((1, "蜜", 0.15),))])
    assert f.value == "检查费" and "national standard" in f.note and "检验费" in f.note
    assert snap_category(name("诊骤费"), [cell("诊骤费", ((1, "繁", 0.13),))]).value == "诊察费"
    assert snap_category(name("中晟药费"), [cell("中晟药费", ((1, "晨", 0.3),))]).value == "中成药费"
    # a runner-up for the regional spelling wins over the standard
    assert snap_category(name("中晟药费"), [cell("中晟药费", ((1, "草", 0.3),))]).value == "中草药费"
    # a tie between two regional spellings is left as read
    assert snap_category(name("输盘费"), [cell("输盘费", ((1, "盆", 0.2),))]).value == "输盘费"

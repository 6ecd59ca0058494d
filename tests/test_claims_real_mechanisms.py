"""The mechanisms that read real receipts (issue 17), each on a hand-made page that always exists.

Each page is a few OCR lines placed as real receipts of the development set print them (the real images
are not needed here; ``tests/test_bills_real.py`` reads those): traditional glyphs from the recogniser,
three column groups over a wide page, column titles OCR read together, a dot-matrix body printed off its
titles, a grid with no titles, items as ``name:amount`` cells, the total in figures on the words' row,
a figure only under 个人支付金额, and several receipts on one sheet.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from claims.document import receipt_regions, structure_image
from claims.glyphs import available, simplify
from claims.numerals import AmountError, parse_amount
from claims.structure import snap_category, structure_page
from core.records import BillField, FieldKind, Page, TextLine

PX = 20  # pixels per character of the hand-made lines


def line(x: float, y: float, text: str, width: float | None = None, h: float = 24, alternatives=()) -> TextLine:
    w = width if width is not None else PX * len(text)
    return TextLine(box=((x, y), (x + w, y), (x + w, y + h), (x, y + h)), text=text, confidence=0.98,
                    alternatives=alternatives)


def page(lines, width: int = 1600, height: int = 1100) -> Page:
    return Page(doc_id="hand", index=0, width=width, height=height, lines=tuple(lines))


def items_of(claim) -> set[tuple[str, Decimal]]:
    return {(i.name.value, i.amount.value) for i in claim.items}


def receipt_top(title: str = "上海市医疗住院收费票据", x: float = 0) -> list[TextLine]:
    return [line(x + 500, 40, title, h=40), line(x + 60, 120, "业务流水号：32037"), line(x + 700, 120, "住院号：4938")]


# ---------------------------------------------------------------------------------------------
# glyphs


needs_opencc = pytest.mark.skipif(not available(), reason="opencc is not installed")


@needs_opencc
def test_traditional_glyphs_read_as_simplified_and_the_raw_reading_is_kept():
    claim = structure_page(page([
        *receipt_top(),
        line(100, 300, "项目名称"), line(300, 300, "金额（元）"), line(450, 300, "备注"),
        line(100, 350, "检查費"), line(300, 350, "3334.20"),
        line(100, 400, "醫藥費"), line(300, 400, "12.00"),
        line(100, 600, "合计（大写）"), line(300, 600, "叁仟叁佰肆拾陆元贰角"), line(800, 600, "(小写)3346.20"),
    ]), verify=False)
    names = {i.name.value: i.name for i in claim.items}
    assert set(names) == {"检查费", "医药费"}
    assert names["检查费"].raw == "检查費" and "simplified" in names["检查费"].note


@needs_opencc
@given(st.text(alphabet=st.sampled_from(list("0123456789.,¥:-/ABCDEFabcdef費醫藥檢查項目费医药 ")), max_size=30))
def test_simplifying_never_changes_a_figure_a_letter_or_a_sign(text):
    out = simplify(text)
    assert len(out) == len(text)
    assert [c for c in out if not "\u4e00" <= c <= "\u9fff"] == [c for c in text if not "\u4e00" <= c <= "\u9fff"]


def test_amounts_as_real_receipts_print_them():
    assert parse_amount("¥:102.41") == Decimal("102.41")
    assert parse_amount("￥2202.67") == Decimal("2202.67")
    assert parse_amount("1303.6") == Decimal("1303.6") and parse_amount("68") == Decimal(68)
    assert parse_amount("24,189.65") == Decimal("24189.65")
    assert parse_amount("0.") == 0  # a dot-matrix form's empty payment
    for lost_decimals in ("10.", "100.", "00."):
        with pytest.raises(AmountError):
            parse_amount(lost_decimals)


def test_a_category_one_misread_ideograph_off_is_snapped_and_says_so():
    f = BillField(name="name", value="护理货", kind=FieldKind.text, raw="护理货", confidence=0.9)
    snapped = snap_category(f)
    assert snapped.value == "护理费" and snapped.raw == "护理货" and "护理货" in snapped.note
    assert snap_category(f.model_copy(update={"value": "B超费"})).value == "B超费"  # a letter is printed, not misread
    assert snap_category(f.model_copy(update={"value": "检X费"})).value == "检X费"  # 检查费 or 检验费: left alone
    assert snap_category(f.model_copy(update={"value": "阿莫西林"})).value == "阿莫西林"


# ---------------------------------------------------------------------------------------------
# grids


def test_three_column_groups_over_a_wide_page_with_the_last_group_empty():
    """收费项目 | 金额(元) three times across an A4 page; the middle group must not be dropped, the empty
    third group gives nothing, and a second (self-pay) figure beside an amount is not part of it."""
    heads = []
    for x in (100, 500, 900):
        heads += [line(x, 300, "收费项目"), line(x + 180, 300, "金额（元）")]
    body = [line(110, 350, "床位费"), line(270, 350, "45.00", 80),
            line(510, 350, "中药费"), line(640, 350, "1584.00", 100), line(760, 350, "316.80", 80),
            line(110, 390, "诊查费"), line(270, 390, "27.00", 80),
            line(490, 390, "自费病房"), line(660, 390, "9.00", 60), line(770, 390, "9.00", 60),
            line(110, 430, "西药费"), line(260, 430, "9870.67", 100), line(380, 430, "1.43", 60)]
    claim = structure_page(page([*receipt_top(), *heads, *body, line(60, 520, "合计（大写）：")]), verify=False)
    assert items_of(claim) == {("床位费", Decimal("45.00")), ("中药费", Decimal("1584.00")), ("诊查费", Decimal("27.00")),
                               ("自费病房", Decimal("9.00")), ("西药费", Decimal("9870.67"))}


def test_column_titles_read_as_one_line_are_cut_apart():
    claim = structure_page(page([
        *receipt_top("河南省医疗门诊收费票据（电子）"),
        line(130, 300, "项目名称"), line(280, 300, "数量/单位金额(元）"), line(480, 300, "备注"),
        line(600, 300, "项目名称"), line(750, 300, "数量/单位"), line(840, 300, "金额(元)"), line(950, 300, "备注"),
        line(125, 340, "一般诊疗费"), line(390, 342, "0.50", 40),
    ]), verify=False)
    assert items_of(claim) == {("一般诊疗费", Decimal("0.50"))}


def test_a_dot_matrix_body_printed_off_its_titles():
    """The printed layer stands ~90 px right of the pre-printed titles: names under 数量/单位, amounts
    under 备注, in both groups; every item is still read with its own amount."""
    heads = []
    for x in (200, 980):
        heads += [line(x, 300, "项目名称"), line(x + 160, 300, "数量/单位"), line(x + 320, 300, "金额（元）"),
                  line(x + 420, 300, "备注")]
    rows = [("床位费", "166", "诊察费", "92"), ("检查费", "2232.8", "化验费", "995"),
            ("治疗费", "3552.8", "手术费", "2618"), ("护理费", "172", "卫生材料费", "75162.09")]
    body = []
    for k, (n1, a1, n2, a2) in enumerate(rows):
        y = 340 + 40 * k
        body += [line(300, y, n1), line(470, y, "1项"), line(640, y, a1, 14 * len(a1)),
                 line(1080, y, n2), line(1250, y, "1项"), line(1420, y, a2, 14 * len(a2))]
    claim = structure_page(page([*receipt_top("吉林省医疗机构住院收费票据"), *heads, *body]), verify=False)
    want = {(n, Decimal(a)) for r in rows for n, a in ((r[0], r[1]), (r[2], r[3]))}
    assert items_of(claim) == want


def test_a_grid_with_no_titles_read_as_name_amount_pairs():
    rows = [["B超费", "0.00 CT费", "270.00 彩超费", "0.00 处置费", "114.00 床位费", "1762.50"],
            ["护理费", "509.00 检查费", "455.00 检验费", "1549.20 麻醉费", "1491.00 其它费", "255.00"]]
    body = []
    for k, row in enumerate(rows):
        x = 190
        for text in row:
            body.append(line(x, 220 + 26 * k, text, 17 * len(text), h=22))
            x += 17 * len(text) + 30
    claim = structure_page(page([line(350, 40, "黑龙江省医疗住院费票据", h=40), line(170, 100, "病案号："),
                                 line(490, 100, "日期：2021年04月26日"), *body,
                                 line(180, 370, "合计金额(大写):"), line(350, 370, "柒仟柒佰伍拾肆元柒角")]), verify=False)
    assert items_of(claim) == {("B超费", Decimal("0.00")), ("CT费", Decimal("270.00")), ("彩超费", Decimal("0.00")),
                               ("处置费", Decimal("114.00")), ("床位费", Decimal("1762.50")), ("护理费", Decimal("509.00")),
                               ("检查费", Decimal("455.00")), ("检验费", Decimal("1549.20")), ("麻醉费", Decimal("1491.00")),
                               ("其它费", Decimal("255.00"))}


def test_whole_items_in_cells_under_a_grid_whose_columns_they_ignore_and_a_total_on_the_words_row():
    heads = []
    for x in (90, 545):
        heads += [line(x, 200, "项目/规格"), line(x + 240, 200, "数量"), line(x + 300, 200, "金额"),
                  line(x + 350, 200, "个人支付金额")]
    body = [line(126, 247, "检查费：10.00"), line(409, 248, "检验费:435.00"), line(695, 249, "治疗费：15.00"),
            line(127, 292, "西药费：155.78"), line(409, 294, "MRI:1319.00")]
    claim = structure_page(page([*receipt_top("湖南省医疗门诊收费票据"), *heads, *body,
                                 line(98, 578, "合计(大写)"), line(200, 578, "壹仟玖佰叁拾肆元柒角捌分"),
                                 line(671, 580, "¥", 20), line(721, 578, "1934.78", 90)]))
    assert items_of(claim) == {("检查费", Decimal("10.00")), ("检验费", Decimal("435.00")), ("治疗费", Decimal("15.00")),
                               ("西药费", Decimal("155.78")), ("MRI", Decimal("1319.00"))}
    assert claim.total_figures is not None and claim.total_figures.value == Decimal("1934.78")


def test_a_figure_only_under_the_self_pay_column_is_the_amount_and_the_name_keeps_its_spec_apart():
    claim = structure_page(page([
        *receipt_top("山东省医疗门诊收费票据"),
        line(557, 764, "项目/规格"), line(1050, 769, "数量"), line(1146, 769, "金额"), line(1244, 766, "个人支付金额"),
        line(1420, 769, "项目/规格"), line(1892, 766, "数量"), line(1986, 765, "金额"), line(2087, 761, "个人支付金额"),
        line(579, 839, "(门)伊曲康唑胶囊(斯皮仁诺)[0.1g*14]", 616), line(1278, 840, "102.41", 118),
        line(578, 896, "粒"), line(672, 897, "1盒"),
        line(516, 1514, "合计(大写);"), line(704, 1525, "壹佰零贰元肆角壹分"), line(1623, 1517, "Y:", 68),
        line(1691, 1521, "102.41", 122),
    ], width=2800, height=2100), verify=False)
    assert items_of(claim) == {("(门)伊曲康唑胶囊(斯皮仁诺)", Decimal("102.41"))}
    assert claim.items[0].spec is not None and claim.items[0].spec.value == "0.1g*14"
    assert claim.total_figures is not None and claim.total_figures.value == Decimal("102.41")


def test_stay_period_and_values_run_into_the_next_label():
    claim = structure_page(page([
        *receipt_top(),
        line(54, 266, "住院时间："), line(180, 266, "2021-04-23"), line(364, 265, "到2021-04-24"),
        line(61, 750, "现金支付："), line(241, 748, "3836.73 个人账户支付：", 240), line(640, 748, "医保统筹支付："),
        line(833, 746, "9248.85附加支付：", 190),
    ]), verify=False)
    assert str(claim.header["admitted"].value) == "2021-04-23" and str(claim.header["discharged"].value) == "2021-04-24"
    assert claim.payments["cash"].value == Decimal("3836.73")
    assert claim.payments["fund"].value == Decimal("9248.85")


@pytest.mark.parametrize("cells", [
    [(54, "住院期间：2021-04-23至2021-04-24")],
    [(54, "住院起止日期：20210423至20210424")],
    [(54, "入出院日期：2021-04-23/2021-04-24")],  # 出院日期 inside it must not take the period as its value
    [(54, "入院：2021-04-23"), (700, "出院：2021-04-24")],
    [(54, "住院时间：2021-04-23 10:20:33至2021-04-24 09:10:00")],
])
def test_stay_dates_under_the_labels_forms_print(cells):
    claim = structure_page(page([*receipt_top(), *(line(x, 266, text) for x, text in cells)]), verify=False)
    assert str(claim.header["admitted"].value) == "2021-04-23" and str(claim.header["discharged"].value) == "2021-04-24"


def test_a_short_stay_label_needs_its_colon():
    claim = structure_page(page([*receipt_top(), line(54, 266, "出院带药2021-04-24")]), verify=False)
    assert "discharged" not in claim.header


# ---------------------------------------------------------------------------------------------
# several receipts on one sheet


def _small_receipt(x: float, y: float, name: str, amount: str) -> list[TextLine]:
    return [line(x + 100, y, "山东省医疗门诊收费票据", h=40), line(x + 20, y + 80, "项目名称"),
            line(x + 200, y + 80, "金额（元）"), line(x + 20, y + 120, name), line(x + 200, y + 120, amount, 80),
            line(x + 20, y + 220, "合计（大写）"), line(x + 300, y + 220, f"(小写){amount}", 200)]


@pytest.mark.parametrize("side_by_side", [True, False])
def test_several_receipts_on_one_sheet_are_found_and_structured_each(side_by_side):
    a = _small_receipt(0, 40, "挂号费", "2.00")
    b = _small_receipt(800, 40, "诊察费", "4.00") if side_by_side else _small_receipt(0, 500, "诊察费", "4.00")
    p = page([*a, *b])
    assert len(receipt_regions(p)) == 2
    claims = structure_image(p)
    assert [items_of(c) for c in claims] == [{("挂号费", Decimal("2.00"))}, {("诊察费", Decimal("4.00"))}]
    assert [c.total_figures.value for c in claims] == [Decimal("2.00"), Decimal("4.00")]


def test_one_receipt_is_one_claim():
    assert len(structure_image(page(_small_receipt(0, 40, "挂号费", "2.00")))) == 1


def test_a_quantity_and_unit_read_into_the_name_are_put_back():
    claim = structure_page(page([
        *receipt_top("吉林省医疗机构住院收费票据"),
        line(200, 300, "项目名称"), line(420, 300, "数量/单位"), line(600, 300, "金额（元）"), line(760, 300, "备注"),
        line(200, 340, "床位费 1项", 260), line(620, 340, "166.00", 80),
        line(200, 380, "检查费"), line(440, 380, "1项"), line(620, 380, "2232.80", 90),
    ]), verify=False)
    assert items_of(claim) == {("床位费", Decimal("166.00")), ("检查费", Decimal("2232.80"))}
    first = next(i for i in claim.items if i.name.value == "床位费")
    assert first.quantity is not None and first.quantity.value == Decimal(1) and first.unit.value == "项"


def test_a_file_whose_page_holds_two_receipts_gives_two_claims():
    from claims.document import structure_document

    p = page([*_small_receipt(0, 40, "挂号费", "2.00"), *_small_receipt(800, 40, "诊察费", "4.00")])
    assert [items_of(c) for c in structure_document([p])] == [{("挂号费", Decimal("2.00"))}, {("诊察费", Decimal("4.00"))}]


def test_a_title_misread_where_its_group_repeats_is_the_first_groups():
    heads = []
    for x, first in ((100, "项目/规格"), (620, "第格")):  # the second 项目/规格 under a stamp
        heads += [line(x, 240, first), line(x + 200, 240, "数量"), line(x + 260, 240, "金额"), line(x + 390, 240, "个人支付金额")]
    claim = structure_page(page([
        *receipt_top("山东省医疗门诊收费票据"), *heads,
        line(110, 285, "治疗费"), line(360, 285, "28.62", 70),
        line(630, 285, "西药费"), line(830, 286, "1"), line(880, 285, "101.97", 70), line(1010, 284, "89.73", 60),
    ]), verify=False)
    assert items_of(claim) == {("治疗费", Decimal("28.62")), ("西药费", Decimal("101.97"))}


def test_a_label_with_one_misread_ideograph_is_read_as_that_label():
    claim = structure_page(page([
        *receipt_top("福建省医疗住院收费票据（电子）"),
        line(130, 864, "预缴金额：10024.00", 300), line(905, 866, "补缴金额：0", 180), line(1276, 868, "退费全额：0.92", 200),
        line(1276, 962, "个人现金支付：10023.08", 300),
    ]), verify=False)
    assert claim.payments["refund"].value == Decimal("0.92") and claim.payments["refund"].raw == "0.92"

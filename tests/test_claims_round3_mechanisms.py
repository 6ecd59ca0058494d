"""Third-round mechanisms for dot-matrix forms and photo sheets (issue 17), on hand-made pages.

The pages copy what real-like *development* pages (``render_reallike`` seeds 7700-7729 dot-matrix forms,
7750-7769 photo sheets) showed OCR doing to column titles and payment lines: a long title with one ideograph
misread (项籍/规格, 收费项a), a short one misread or cut where another column group prints it whole (全额 and
金 for 金额), a repeated group's item-name title lost altogether, a quantity's unit (项) alone in a cell, the
ways paid printed across a grid's columns (现金：0, | 支付宝：0,), a subtotal line read as a stream item, and
on a photo of stacked receipts, a receipt whose title was lost above the first title found.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from claims.document import receipt_regions, structure_image
from claims.structure import structure_page
from core.records import Page, TextLine

PX = 20


def line(x: float, y: float, text: str, h: float = 26, w: float | None = None) -> TextLine:
    w = PX * len(text) if w is None else w
    return TextLine(box=((x, y), (x + w, y), (x + w, y + h), (x, y + h)), text=text, confidence=0.98)


def page(lines, height: int = 700) -> Page:
    return Page(doc_id="hand", index=0, width=1250, height=height, lines=tuple(lines))


def items_of(claim) -> set[tuple[str, Decimal]]:
    return {(i.name.value, i.amount.value) for i in claim.items}


def form_top(y: float = 70) -> list[TextLine]:
    return [line(470, y, "门诊收费专用票据"), line(930, y + 30, "NO.2852351047")]


def itemised_titles(first: str, second: str, y: float = 250) -> list[TextLine]:
    """Two groups of 项目/规格 | 数量 | 金额 | 个人支付金额, the item-name titles as OCR read them."""
    out = []
    for x, name in ((110, first), (630, second)):
        out += [line(x, y, name), line(x + 200, y, "数量"), line(x + 260, y, "金额"), line(x + 390, y, "个人支付金额")]
    return out


ITEMISED_BODY = [
    line(120, 300, "诊察费"), line(312, 300, "1项"), line(370, 300, "51.20"), line(498, 300, "33.79"),
    line(640, 300, "西药费"), line(830, 300, "1项"), line(880, 300, "74.27"), line(1002, 300, "60.90"),
    line(120, 340, "检查费"), line(370, 340, "368.39"), line(498, 340, "187.88"),
    line(640, 340, "中成药费"), line(880, 340, "76.53"), line(1002, 340, "58.16"),
    line(140, 420, "合计(大写)"), line(760, 420, "570.39"),
]
ITEMISED_ITEMS = {("诊察费", Decimal("51.20")), ("西药费", Decimal("74.27")),
                  ("检查费", Decimal("368.39")), ("中成药费", Decimal("76.53"))}


def test_long_titles_misread_by_one_ideograph_still_name_their_columns():
    # 项籍/规格 and 项昭/规格 (a photo's glare), 项日/规格: the slash and the other characters as printed
    for first, second in (("项籍/规格", "项昭/规格"), ("项日/规格", "项目/规格")):
        claim = structure_page(page([*form_top(), *itemised_titles(first, second), *ITEMISED_BODY]), verify=False)
        assert items_of(claim) == ITEMISED_ITEMS, (first, second)


def test_text_with_no_figure_under_the_amount_title_is_no_item():
    # a real tuning bill read in BF16: a stamp's 威 in the name column, the cashier's name under 金额; kept as an
    # item with no amount, it made the page read better as a stream, which split a drug at its dose
    stamp = [line(640, 380, "威"), line(880, 380, "张三")]
    body = [*ITEMISED_BODY[:-2], *stamp, *ITEMISED_BODY[-2:]]
    claim = structure_page(page([*form_top(), *itemised_titles("项目/规格", "项目/规格"), *body]), verify=False)
    assert items_of(claim) == ITEMISED_ITEMS
    assert all(i.amount.value is not None for i in claim.items)


def test_a_dose_in_a_name_is_no_amount_of_a_stream():
    from claims.structure import _TOKEN

    amounts = [m[0] for m in _TOKEN.finditer("(门)伊曲康唑胶囊(斯皮仁诺)[0.1g*14] 102.41") if m.lastgroup == "amount"]
    assert amounts == ["102.41"]
    assert [m[0] for m in _TOKEN.finditer("B超费0.00CT费270.00") if m.lastgroup == "amount"] == ["0.00", "270.00"]
    assert [m[0] for m in _TOKEN.finditer("维生素C 0.5×10 12.50") if m.lastgroup == "amount"] == ["12.50"]


def test_a_long_title_with_two_characters_misread_is_no_title():
    for first, second in (("项籍/规划", "项昭/规划"),):
        claim = structure_page(page([*form_top(), *itemised_titles(first, second), *ITEMISED_BODY]), verify=False)
        assert items_of(claim) != ITEMISED_ITEMS


def category_titles(group1: tuple[str, ...], group2: tuple[str, ...], y: float = 225) -> list[TextLine]:
    """收费项目 | 金额 | 个人支付金额 twice; an empty string is a title OCR lost."""
    out = []
    for x, group in ((110, group1), (625, group2)):
        for dx, text in zip((0, 215, 340), group):
            if text:
                out.append(line(x + dx, y, text))
    return out


CATEGORY_BODY = [
    line(118, 270, "床位费"), line(333, 270, "144.18"), line(462, 270, "76.42"),
    line(633, 270, "西药费"), line(848, 270, "540.74"), line(975, 270, "254.15"),
    line(118, 305, "诊察费"), line(333, 305, "11.08"), line(462, 305, "10.64"),
    line(633, 305, "中药饮片费"), line(848, 305, "11.70"), line(975, 305, "1.05"),
    line(113, 440, "合计（大写）"), line(816, 440, "(小写)¥707.70"),
]
CATEGORY_ITEMS = {("床位费", Decimal("144.18")), ("西药费", Decimal("540.74")),
                  ("诊察费", Decimal("11.08")), ("中药饮片费", Decimal("11.70"))}


def test_a_short_title_misread_or_cut_takes_the_title_another_group_prints_there():
    for group1, group2 in ((("收费项目", "全额", "个人支付金额"), ("收费项目", "金额", "个人支付金额")),
                           (("收费项目", "金额", "个人支付金额"), ("收费项目", "金", "个人支付金额"))):
        claim = structure_page(page([*form_top(), *category_titles(group1, group2), *CATEGORY_BODY]), verify=False)
        assert items_of(claim) == CATEGORY_ITEMS, (group1, group2)


def test_a_repeated_group_whose_item_name_title_was_lost_is_read_where_the_first_group_prints_it():
    for group2 in (("", "金额", "个人支付金额"), ("", "金", "个人支付金额")):
        claim = structure_page(page([*form_top(), *category_titles(("收费项目", "金额", "个人支付金额"), group2),
                                     *CATEGORY_BODY]), verify=False)
        assert items_of(claim) == CATEGORY_ITEMS, group2


def test_amount_misread_right_after_the_item_name_title_is_the_amount_title():
    lines = [*form_top(), line(110, 225, "收费项目"), line(325, 225, "企额"), line(450, 225, "个人支付金额"),
             *(c for c in CATEGORY_BODY if c.left < 600 or "小写" in c.text or "大写" in c.text)]
    claim = structure_page(page(lines), verify=False)
    assert items_of(claim) == {("床位费", Decimal("144.18")), ("诊察费", Decimal("11.08"))}


def test_amount_misread_past_the_quantity_title_is_the_amount_title():
    # a development photo sheet (render_reallike 7763): 项目/规格 | 数量 | 全额 | 个人支付金额, twice
    titles = [tl if tl.text != "金额" else line(tl.left, tl.top, "全额") for tl in itemised_titles("项目/规格", "项目/规格")]
    claim = structure_page(page([*form_top(), *titles, *ITEMISED_BODY]), verify=False)
    assert items_of(claim) == ITEMISED_ITEMS


def test_the_ways_paid_across_a_category_grid_are_no_items():
    lines = [*form_top(), *category_titles(("收费项目", "金额", "个人支付金额"), ("收费项目", "金额", "个人支付金额")),
             *CATEGORY_BODY[:12],
             line(123, 380, "其他记帐：0,"), line(634, 380, "现金：0,"), line(892, 380, "支付宝：0,"),
             line(118, 405, "现金·0.00"), line(633, 405, "微信：问诊收款"),
             *CATEGORY_BODY[12:]]
    claim = structure_page(page(lines), verify=False)
    assert items_of(claim) == CATEGORY_ITEMS


def tl(quad, text: str) -> TextLine:
    return TextLine(box=tuple(quad), text=text, confidence=0.98)


def test_a_quantitys_unit_alone_is_no_item_name():
    # 1项 printed into the 数量 column with its 1 lost (a stamp), on a photo turned a little: 项 is neither a
    # name nor a reason to shift the columns; 金新 is the 金额 the first group prints (the lines as OCR read a
    # development page, render_reallike 7703)
    lines = [tl([(461, 83), (781, 69), (783, 113), (463, 128)], "医疗门诊收费票据"),
             tl([(972, 110), (1144, 104), (1146, 139), (973, 145)], "No5223219234"),
             tl([(106, 190), (216, 186), (217, 214), (106, 218)], "业务流水号："),
             tl([(277, 187), (440, 179), (441, 209), (278, 217)], "4719719170967115"),
             tl([(449, 175), (578, 171), (579, 201), (450, 206)], "医疗机构类型："),
             tl([(793, 161), (866, 158), (867, 187), (794, 190)], "校验码："),
             tl([(795, 206), (885, 201), (886, 230), (797, 234)], "医保类型："),
             tl([(941, 203), (1025, 200), (1026, 232), (942, 234)], "居民医保"),
             tl([(116, 277), (205, 275), (206, 303), (116, 306)], "项目/规格"),
             tl([(312, 268), (419, 263), (420, 295), (314, 300)], "数量金额"),
             tl([(501, 262), (612, 258), (613, 286), (501, 289)], "个人支付金额"),
             tl([(633, 256), (720, 252), (721, 281), (634, 284)], "项目/规格"),
             tl([(891, 246), (932, 243), (934, 271), (893, 274)], "金新"),
             tl([(1016, 240), (1128, 235), (1129, 263), (1017, 268)], "个人支付金额"),
             tl([(142, 326), (216, 323), (217, 356), (143, 359)], "化验费"),
             tl([(336, 319), (381, 316), (383, 347), (338, 350)], "项"),
             tl([(396, 317), (470, 313), (472, 343), (397, 346)], "116.23"),
             tl([(660, 304), (773, 301), (773, 333), (661, 335)], "中药饮片费"),
             tl([(921, 293), (977, 293), (977, 324), (921, 324)], "13.50"),
             tl([(144, 362), (219, 362), (219, 395), (144, 395)], "治疗费"),
             tl([(338, 355), (384, 355), (384, 386), (338, 386)], "项"),
             tl([(395, 354), (460, 351), (461, 380), (396, 383)], "57.04"),
             tl([(1211, 331), (1235, 331), (1235, 360), (1211, 360)], "C"),
             tl([(774, 368), (888, 410), (876, 444), (762, 402)], "收费专用章"),
             tl([(1214, 415), (1240, 415), (1240, 445), (1214, 445)], "C"),
             tl([(126, 482), (268, 477), (269, 508), (127, 512)], "金额合计(大写)"),
             tl([(335, 478), (552, 471), (553, 502), (336, 508)], "壹佰捌拾陆元柒角柒分"),
             tl([(836, 452), (899, 450), (900, 479), (837, 482)], "(小写)"),
             tl([(922, 451), (1025, 448), (1026, 479), (923, 483)], "￥:186.77")]
    claim = structure_page(page(lines), verify=False)
    assert items_of(claim) == {("化验费", Decimal("116.23")), ("中药饮片费", Decimal("13.50")),
                               ("治疗费", Decimal("57.04"))}


def test_a_subtotal_is_no_stream_item():
    lines = [*form_top(), line(120, 300, "B超费"), line(260, 300, "0.00"), line(420, 300, "CT费"),
             line(560, 300, "270.00"),
             line(120, 340, "自费小计 8.72", w=160), line(420, 340, "医疗小计 270.00", w=180)]
    claim = structure_page(page(lines), verify=False)
    assert items_of(claim) == {("B超费", Decimal("0.00")), ("CT费", Decimal("270.00"))}


def receipt(y: float, title: str | None, items: list[tuple[str, str]], total: str) -> list[TextLine]:
    out = [line(470, y, title, h=40)] if title else []
    out += [line(110, y + 60, "收费项目"), line(325, y + 60, "金额(元)")]
    out += [tl for k, (name, amount) in enumerate(items)
            for tl in (line(118, y + 100 + 35 * k, name), line(333, y + 100 + 35 * k, amount))]
    bottom = y + 100 + 35 * len(items) + 20
    return out + [line(113, bottom, "合计（大写）"), line(500, bottom, "(小写)" + total)]


def test_a_receipt_above_the_first_title_found_is_a_receipt_of_its_own():
    # three receipts stacked on one photo; the top one's title lost to glare: its totals close it
    top = receipt(40, None, [("化验费", "10.60"), ("西药费", "292.59")], "303.19")
    middle = receipt(500, "医疗住院收费票据", [("床位费", "596.53"), ("诊察费", "663.34"), ("检查费", "3034.58")], "4294.45")
    bottom = receipt(1000, "浙江省住院收费票据", [("床位费", "300.20"), ("检查费", "227.24")], "527.44")
    sheet = page([*top, *middle, *bottom], height=1500)
    assert len(receipt_regions(sheet)) == 3
    claims = structure_image(sheet, verify=False)
    assert [items_of(c) for c in claims] == [
        {("化验费", Decimal("10.60")), ("西药费", Decimal("292.59"))},
        {("床位费", Decimal("596.53")), ("诊察费", Decimal("663.34")), ("检查费", Decimal("3034.58"))},
        {("床位费", Decimal("300.20")), ("检查费", Decimal("227.24"))}]


def scaled(lines: list[TextLine], k: float, dy: float) -> list[TextLine]:
    """``lines`` as a receipt photographed ``k`` times as large, ``dy`` further down the sheet."""
    return [TextLine(box=tuple((x * k, y * k + dy) for x, y in tl.box), text=tl.text, confidence=tl.confidence)
            for tl in lines]


def test_a_receipt_photographed_small_on_its_sheet_is_headed_by_its_title():
    # a development photo sheet (render_reallike 7758): its third receipt, shot at half the others' size, prints its
    # title smaller than the sheet's typical line, though large for its own lines; it was read into the receipt above
    top = receipt(40, "医疗门诊收费票据", [("化验费", "10.60"), ("西药费", "292.59")], "303.19")
    middle = receipt(500, "医疗住院收费票据", [("床位费", "596.53"), ("诊察费", "663.34"), ("检查费", "3034.58")], "4294.45")
    small = scaled(receipt(0, "医疗住院收费票据", [("麻醉费", "1723.20"), ("护理费", "87.12")], "1810.32"), 0.5, 1000)
    sheet = page([*top, *middle, *small], height=1300)
    assert len(receipt_regions(sheet)) == 3
    claims = structure_image(sheet, verify=False)
    assert [items_of(c) for c in claims][2] == {("麻醉费", Decimal("1723.20")), ("护理费", Decimal("87.12"))}
    assert claims[2].total_figures.value == Decimal("1810.32")


def test_a_title_that_lost_one_character_of_its_shou_fei_piao_ju_still_heads_a_receipt():
    # a fresh development photo (render_reallike 7943): 医疗门诊收费据, the 票 lost; its receipt was read as part of
    # the one above and lost whole
    first = receipt(40, "住院收费票据", [("床位费", "596.53"), ("化验费", "10.60")], "607.13")
    for title in ("医疗门诊收费据", "医疗门诊收费栗据", "门诊收费票"):
        second = receipt(500, title, [("治疗费", "2.64"), ("西药费", "42.22")], "44.86")
        claims = structure_image(page([*first, *second], height=900), verify=False)
        assert [items_of(c) for c in claims] == [{("床位费", Decimal("596.53")), ("化验费", Decimal("10.60"))},
                                                 {("治疗费", Decimal("2.64")), ("西药费", Decimal("42.22"))}], title
    # nothing else is taken for a title: a column title, the stamp, a short fragment
    from claims.document import _is_title

    assert not any(_is_title(k) for k in ("收费项目", "收费专用章", "收费据", "医疗机构类型", "收款单位(章)"))


def test_nothing_above_the_first_title_but_its_header_stays_with_it():
    # no totals above the title: the lines above it (a stamp, a code) are the first receipt's, not a receipt
    first = [line(470, 0, "票据监制章"), *receipt(40, "医疗门诊收费票据", [("化验费", "10.60")], "10.60")]
    second = receipt(500, "医疗住院收费票据", [("床位费", "596.53")], "596.53")
    assert len(receipt_regions(page([*first, *second], height=900))) == 2


def test_a_stamps_characters_read_on_after_a_category_are_cut_and_a_printed_name_is_kept():
    from claims.structure import snap_category
    from core.records import BillField, FieldKind

    def name(text: str) -> str:
        return snap_category(BillField(name="name", raw=text, value=text, kind=FieldKind.text)).value

    assert name("化验费市第") == "化验费"  # 市第 of the stamp's 市第一人民医院
    assert name("中成药费院") == "中成药费"
    assert name("诊察费用") == "诊察费用"  # printed so (a category of its own)
    assert name("检查费用") == "检查费用"  # 费用 is how names end, never a stamp's
    assert name("一般诊疗费") == "一般诊疗费"
    assert name("化验费市第一人民") == "化验费市第一人民"  # more than two characters: not cut
    lines = [*form_top(), *category_titles(("收费项目", "金额", "个人支付金额"), ("收费项目", "金额", "个人支付金额")),
             line(118, 270, "化验费市第"), line(333, 270, "179.56"), line(633, 270, "中成药费院"), line(848, 270, "67.56"),
             line(113, 440, "合计（大写）"), line(816, 440, "(小写)¥247.12")]
    claim = structure_page(page(lines), verify=False)
    assert items_of(claim) == {("化验费", Decimal("179.56")), ("中成药费", Decimal("67.56"))}
    assert all(i.name.raw != i.name.value and "stamp" in i.name.note for i in claim.items)


def test_a_stamps_character_before_a_category_is_cut_a_lost_first_one_put_back_and_printed_names_kept():
    from claims.structure import CATEGORIES, snap_category
    from core.records import BillField, FieldKind

    def name(text: str) -> BillField:
        return snap_category(BillField(name="name", raw=text, value=text, kind=FieldKind.text))

    assert name("吉治疗费").value == "治疗费"  # found on a real tuning bill: the stamp across the name column
    assert name("财护理费").value == "护理费"
    assert "stamp" in name("财护理费").note
    assert name("门诊检查费").value == "门诊检查费"  # two characters before: a printed name
    assert name("B超检查费").value == "B超检查费"  # a letter: printed
    assert name("伊曲康唑胶囊").value == "伊曲康唑胶囊"
    assert name("诊费").value == "诊费"
    # no printed category is cut: none is one ideograph more than another
    assert all(name(c).value == c for c in CATEGORIES)
    # the category's first ideograph lost under the stamp: put back when exactly one category ends so
    assert name("药饮片费").value == "中药饮片费"  # found on a fresh development page (render_reallike 7901)
    assert name("药事服务费"[1:]).value == "药事服务费"
    assert name("殊检查费").value == "殊检查费"  # 特殊检查费, or 检查费 behind a stamp's 殊: left as read
    assert name("成药费").value == "成药费"  # three characters: too short to be sure
    assert name("饮片费").value == "饮片费"
    lines = [*form_top(), *category_titles(("收费项目", "金额", "个人支付金额"), ("收费项目", "金额", "个人支付金额")),
             line(118, 270, "吉治疗费"), line(333, 270, "179.56"), line(633, 270, "财护理费"), line(848, 270, "67.56"),
             line(113, 440, "合计（大写）"), line(816, 440, "(小写)¥247.12")]
    claim = structure_page(page(lines), verify=False)
    assert items_of(claim) == {("治疗费", Decimal("179.56")), ("护理费", Decimal("67.56"))}


def test_a_lower_case_hex_check_code_with_one_look_alike_takes_the_hex_digit():
    def code(read: str):
        lines = [*form_top(), line(790, 160, "校验码："), line(890, 160, read, w=80)]
        return structure_page(page(lines), verify=False).header["check_code"]

    assert code("8t6e81").value == "8f6e81"
    assert code("99f5fB").value == "99f5f8"
    assert "look-alikes" in code("8t6e81").note
    assert code("f04e1a").value == "f04e1a"  # already hex
    assert code("6oV401").value == "6oV401"  # a real e-receipt's mixed-case code, o printed
    assert code("QLBV35").value == "QLBV35"  # upper-case letters and digits: no lower-case hex to show
    assert code("8t6g81").value == "8t6g81"  # two characters off hex: left as read


def test_a_number_ends_where_its_digits_end():
    # the next field's value or label read into a number's line on a photo
    lines = [line(470, 70, "门诊收费专用票据"), line(100, 160, "业务流水号："), line(230, 160, "96628838033475综合医院", w=260),
             line(100, 200, "票据号码："), line(230, 200, "00058548"), line(600, 200, "校验码："), line(700, 200, "f04e1a")]
    head = structure_page(page(lines), verify=False).header
    assert head["serial_no"].value == "96628838033475"
    assert "综合医院" in head["serial_no"].note
    assert head["bill_no"].value == "00058548"
    assert head["check_code"].value == "f04e1a"


def test_a_label_with_one_ideograph_lost_is_read_when_only_one_label_fits():
    from claims.layout import cells_of
    from claims.structure import fix_misread_label

    def read(text: str) -> str:
        return fix_misread_label(cells_of([line(100, 100, text)])[0]).text

    assert read("预金额：10000.00") == "预缴金额:10000.00"  # the text NFKC-folded, as the other fixes give it
    assert read("缴金额：0.00") == "缴金额：0.00"  # 预缴金额 or 补缴金额
    assert read("个人付：12.00") == "个人付：12.00"  # 个人自付 or 个人支付
    assert read("金额：12.00") == "金额：12.00"  # too short to be a label with a character lost
    lines = [line(470, 70, "医疗住院收费票据"), line(100, 160, "预金额："), line(200, 160, "10000.00"),
             line(600, 160, "补缴金额：0.00")]
    pays = structure_page(page(lines), verify=False).payments
    assert pays["prepaid"].value == Decimal("10000.00") and pays["top_up"].value == Decimal("0.00")


def test_the_institution_type_at_the_top_of_a_form_is_never_the_hospital():
    lines = [line(470, 70, "门诊收费专用票据"), line(100, 140, "医疗机构类型："), line(260, 140, "妇幼保健院"),
             line(100, 600, "收款单位(章)：")]
    assert "hospital" not in structure_page(page(lines), verify=False).header
    lines = [line(300, 20, "洛阳市妇幼保健院"), line(470, 70, "门诊收费专用票据"), line(100, 600, "收款单位(章)：")]
    assert structure_page(page(lines), verify=False).header["hospital"].value == "洛阳市妇幼保健院"


def test_sex_with_its_second_character_misread_is_read_when_the_value_proves_it():
    def sex(*cells: TextLine):
        head = structure_page(page([line(470, 70, "门诊收费专用票据"), *cells]), verify=False).header
        return head["sex"].value if "sex" in head else None

    assert sex(line(100, 160, "性割：女")) == "女"
    assert sex(line(100, 160, "性测："), line(190, 160, "女")) == "女"
    assert sex(line(100, 160, "性：")) is None  # no value to prove it
    assert sex(line(100, 160, "性质：公立")) is None  # 性质 is no 性别: 公立 is no sex


def test_a_personal_payment_label_under_a_stamp_is_read():
    """Fourth round (render_reallike 7800-7839, printed e-receipts): the red stamp over the red 个人账户支付 leaves
    人账户支付, 账户支付 or 个人账尺支付; each is read as the label, and nothing wider (基金支付 ends many funds)."""
    from claims.layout import cells_of
    from claims.structure import fix_misread_label

    def read(text: str) -> str:
        return fix_misread_label(cells_of([line(100, 100, text)])[0]).text

    assert read("人账户支付：493.85") == "个人账户支付:493.85"
    assert read("账户支付：3,770.11") == "个人账户支付:3,770.11"
    assert read("个人账尺支付：0") == "个人账尺支付：0".replace("账尺", "账户").replace("：", ":")
    assert read("基金支付：12.00") == "基金支付：12.00"  # 统筹基金支付, 大病保险基金支付 …: left alone
    lines = [line(470, 70, "医疗住院收费票据"), line(100, 160, "账户支付：3,770.11"), line(600, 160, "个人现金支付：2,730.08")]
    pays = structure_page(page(lines), verify=False).payments
    assert pays["account"].value == Decimal("3770.11") and pays["cash"].value == Decimal("2730.08")


def test_a_label_one_off_two_labels_is_the_one_the_page_does_not_print_elsewhere():
    """Sixth round (a real tuning bill read in BF16): 个人自膏 is one ideograph off 个人自费 and 个人自付; beside a
    printed 个人自付 it is 个人自费, since a form prints each label once. Alone it stays unread."""
    def pays(*cells: TextLine):
        return structure_page(page([line(470, 70, "医疗住院收费票据"), *cells]), verify=False).payments

    lone = pays(line(100, 160, "个人自膏："), line(200, 160, "534.02"))
    assert "self_expense" not in lone and "self_pay" not in lone
    both = pays(line(100, 120, "个人自付："), line(200, 120, "29.95"), line(100, 160, "个人自膏："), line(200, 160, "534.02"))
    assert both["self_pay"].value == Decimal("29.95") and both["self_expense"].value == Decimal("534.02")


@pytest.mark.parametrize("read", ["个人自歌8.10", "个人自8.10"])
def test_a_payment_label_misread_with_its_colon_lost_is_the_one_the_page_does_not_print_elsewhere(read):
    """Fifteenth round (development e-receipts): 费 misread or lost with the colon after it (个人自歌8.1, 个人自0.00).
    Beside a printed 个人自付 it is 个人自费 and the figure its amount; alone it stays unread, and a fee category with
    its figure (中成药费12.00) is no payment label."""
    def pays(*cells: TextLine):
        return structure_page(page([line(470, 70, "医疗住院收费票据"), *cells]), verify=False).payments

    lone = pays(line(100, 160, read))
    assert "self_expense" not in lone and "self_pay" not in lone
    both = pays(line(100, 120, "个人自付：29.95"), line(100, 160, read))
    assert both["self_pay"].value == Decimal("29.95") and both["self_expense"].value == Decimal("8.10")
    assert pays(line(100, 120, "个人自付：29.95"), line(100, 160, "中成药费12.00")).keys() == {"self_pay"}


def test_a_category_and_a_figure_without_its_point_in_one_cell_is_an_item_the_sum_repairs():
    """Sixth round (render_reallike dot-matrix seed 8100, BF16): the stamp over 其他费:246.48 left 其他费:24648, a
    whole item whose point OCR lost. It is an item; the total in words pins the sum, which puts the point back.
    A figure without decimals beside a name that is no fee category (病案号:12345) is no item."""
    heads = [line(110, 220, "项目/规格"), line(320, 220, "数量"), line(380, 220, "金额"), line(500, 220, "个人支付金额")]
    body = [line(150, 280, "化验费：9.41"), line(490, 290, "治疗费：10.35"), line(830, 300, "其他费：24648"),
            line(150, 330, "病案号：12345")]
    totals = [line(116, 400, "合计(大写)"), line(270, 400, "贰佰陆拾陆元贰角肆分"), line(810, 416, "(小写)￥266.24")]
    claim = structure_page(page([*form_top(), *heads, *body, *totals]))
    assert items_of(claim) == {("化验费", Decimal("9.41")), ("治疗费", Decimal("10.35")), ("其他费", Decimal("246.48"))}
    assert "24648" in next(i for i in claim.items if i.name.value == "其他费").amount.raw

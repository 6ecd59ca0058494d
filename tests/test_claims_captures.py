"""What a capture changes in a receipt's reading (issue 17, eleventh round): the real tuning bills captured again
as grey scans, small crops, strong JPEG, on tinted paper and as phone photos (``benchmarks/captures.py``) showed
these failures; each is reproduced here on a hand-made page, which always exists.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from claims.document import receipt_regions, structure_image
from claims.structure import structure_page
from tests.test_claims_label_variants import footer, grid
from tests.test_claims_real_mechanisms import items_of, line, page, receipt_top


def _e_receipt_top(title_height: float = 40) -> list:
    """A 福建 e-receipt's top: its title, and far to its lower left the 票据名称 field that repeats the title."""
    return [line(500, 40, "福建省医疗住院收费票据(电子)", h=title_height),
            line(60, 120, "电子票据代码:350602", h=34), line(900, 120, "电子票据号码:00002753", h=34),
            line(60, 170, "票据名称:福建省医疗住院收费票据(电子)", h=34), line(900, 170, "校验码:d2cf", h=34)]


def test_the_title_repeated_as_a_fields_value_heads_no_receipt_of_its_own():
    # in a grey scan the 票据名称 line was read as tall as the title, and split the receipt in two
    p = page([*_e_receipt_top(title_height=34), *grid(), *footer()])
    assert len(receipt_regions(p)) == 1
    claims = structure_image(p, verify=False)
    assert len(claims) == 1
    assert items_of(claims[0]) == {("检查费", Decimal("3334.20")), ("药费", Decimal("12.00"))}
    assert claims[0].header["bill_code"].value == "350602" and claims[0].header["check_code"].value == "d2cf"


def test_two_titled_receipts_side_by_side_are_still_two():
    left = [line(100, 40, "福建省医疗门诊收费票据(电子)", h=40), line(20, 120, "项目名称"), line(200, 120, "金额（元）"),
            line(20, 160, "挂号费"), line(200, 160, "2.00")]
    right = [line(1000, 40, "福建省医疗门诊收费票据(电子)", h=40), line(920, 120, "项目名称"), line(1100, 120, "金额（元）"),
             line(920, 160, "诊察费"), line(1100, 160, "4.00")]
    assert len(receipt_regions(page([*left, *right], width=1900))) == 2


@pytest.mark.parametrize(("words", "total"), [
    ("柒万捌仟捌佰伍拾壹元壹角叁", Decimal("78851.13")),  # its 分 lost at the end of the line
    ("￥柒万捌仟捌佰伍拾壹元壹角叁", Decimal("78851.13")),
    ("叁仟叁佰肆拾陆元贰角", Decimal("3346.20")),  # nothing lost: read as before
])
def test_total_in_words_whose_last_fen_was_lost(words, total):
    claim = structure_page(page([*receipt_top(), *grid(), line(100, 700, "合计金额(大写):"),
                                 line(400, 700, words, width=400)]), verify=False)
    assert claim.total_words.value == total


@pytest.mark.parametrize("words", ["柒万捌仟捌佰伍拾壹元叁", "柒万捌仟捌佰伍拾壹元壹角分"])
def test_a_numeral_lost_or_a_unit_lost_elsewhere_is_not_guessed(words):
    # after 元 a lone numeral is 角 or a colloquial shortening; a numeral lost before 分 cannot be known
    claim = structure_page(page([*receipt_top(), *grid(), line(100, 700, "合计金额(大写):"),
                                 line(400, 700, words, width=400)]), verify=False)
    assert claim.total_words is None or claim.total_words.value is None


@pytest.mark.parametrize("overlap", [0, 10, 19])
def test_a_value_whose_box_reaches_into_its_label(overlap):
    # on tinted paper the value's box started 19 pixels inside its label's (a character is 20 pixels here)
    label = line(100, 700, "金额合计（大写）")
    words = line(label.box[1][0] - overlap, 700, "叁仟叁佰肆拾陆元贰角", width=260)
    claim = structure_page(page([*receipt_top(), *grid(), label, words]), verify=False)
    assert claim.total_words.value == Decimal("3346.20")


def test_a_cell_well_inside_the_label_is_no_value_of_it():
    # a box that starts more than a character inside the label is part of it (a duplicate reading), not its value
    label = line(100, 700, "金额合计（大写）")
    words = line(label.box[1][0] - 60, 700, "叁仟叁佰肆拾陆元贰角", width=260)
    claim = structure_page(page([*receipt_top(), *grid(), label, words]), verify=False)
    assert claim.total_words is None or claim.total_words.value is None


@pytest.mark.parametrize("label", ["阻保类型:", "医保类别:", "参保类型:"])
def test_a_label_one_misread_off_two_spellings_of_one_label(label):
    # 阻保类型 is one ideograph off both 医保类型 and 参保类型: either way it is the insurance type
    claim = structure_page(page([*receipt_top(), line(60, 200, label), line(180, 200, "市医保"), *grid(), *footer()]),
                           verify=False)
    assert claim.header["insurance_type"].value == "市医保"


def test_a_label_one_misread_off_labels_of_two_fields_stays_unread():
    # 人院时间 is one ideograph off 入院时间, 出院时间 and 住院时间: which date it is cannot be known
    claim = structure_page(page([*receipt_top(), line(60, 200, "人院时间:2021-04-23", width=400), *grid(), *footer()]),
                           verify=False)
    assert "admitted" not in claim.header and "discharged" not in claim.header


@pytest.mark.parametrize(("amount", "value", "what"), [("41,665,31", Decimal("41665.31"), "comma"),
                                                     ("12,25", Decimal("12.25"), "comma"),
                                                     ("6603/56", Decimal("6603.56"), "slash")])
def test_a_decimal_point_read_as_a_comma_or_slash_is_read_and_reviewed(amount, value, what):
    claim = structure_page(page([*receipt_top(), line(100, 400, "项目名称"), line(300, 400, "金额（元）"),
                                 line(100, 450, "西药费"), line(300, 450, amount), *footer()]), verify=False)
    [item] = claim.items
    assert item.amount.value == value and item.amount.needs_review
    assert f"{what} read as the decimal point" in item.amount.note


@pytest.mark.parametrize(("amount", "value"), [("41,665.31", Decimal("41665.31")), ("1,225", Decimal(1225))])
def test_thousands_separators_are_no_decimal_point(amount, value):
    claim = structure_page(page([*receipt_top(), line(100, 400, "项目名称"), line(300, 400, "金额（元）"),
                                 line(100, 450, "西药费"), line(300, 450, amount), *footer()]), verify=False)
    [item] = claim.items
    assert item.amount.value == value and "comma" not in item.amount.note


def test_a_stay_period_whose_label_was_misread_one_ideograph_off():
    # 住院时问 (间 misread on a small crop): two dates after it prove the label
    claim = structure_page(page([*receipt_top(), line(60, 200, "住院时问：20210318|20210506", width=400),
                                 *grid(), *footer()]), verify=False)
    assert (str(claim.header["admitted"].value), str(claim.header["discharged"].value)) == ("2021-03-18", "2021-05-06")


def test_one_date_after_a_label_one_off_several_is_no_stay_period():
    claim = structure_page(page([*receipt_top(), line(60, 200, "人院时间：20210318", width=300), *grid(), *footer()]),
                           verify=False)
    assert "admitted" not in claim.header and "discharged" not in claim.header


def _vat_invoice(total_row: list) -> list:
    heads = [(48, "货物或应税劳务、服务名称"), (224, "规格型号"), (298, "单位"), (347, "数量"), (418, "单"), (435, "价"),
             (494, "金额"), (574, "税率"), (634, "税额")]
    return [line(200, 20, "北京增值税电子普通发票", h=30), line(560, 60, "开票日期：2022年04月02日", width=200),
            *(line(x, 173, text, h=14, width=14 * len(text)) for x, text in heads),
            line(28, 190, "*运输服务*客运服务费", h=14, width=108), line(302, 188, "次", h=14, width=18),
            line(435, 189, "13.32", h=14, width=33), line(534, 189, "13.32", h=14, width=35),
            line(579, 188, "免税", h=14, width=29), line(672, 190, "***", h=14, width=35),
            *total_row,
            line(72, 329, "价税合计（大写）", h=14, width=85), line(204, 328, "壹拾叁圆叁角贰分", h=14, width=104),
            line(559, 329, "(小写)￥13.32", h=14, width=81)]


@pytest.mark.parametrize("read", ["合计", "合 计", "计", "合"])
def test_the_invoices_total_row_printed_spaced_out_is_no_item(read):
    # 合      计 read as two cells on a small crop became an item named 合计; with its 合 lost on faded print, 计
    cells = {"合计": [line(84, 306, "合计", h=14, width=60)],
             "合 计": [line(84, 306, "合", h=14, width=18), line(126, 306, "计", h=14, width=18)],
             "计": [line(126, 306, "计", h=14, width=18)], "合": [line(84, 306, "合", h=14, width=18)]}
    row = cells[read]
    claim = structure_page(page(_vat_invoice([*row, line(524, 306, "￥13.32", h=14, width=45),
                                              line(674, 307, "***", h=14, width=35)]), width=760, height=480),
                           verify=False)
    assert claim.doc_type.value == "vat_invoice"
    assert items_of(claim) == {("*运输服务*客运服务费", Decimal("13.32"))}


_INVOICE_AT_FULL_SIZE = [  # (x, y, width, height, text): a VAT e-invoice's grid as OCR boxed it on a 1190-wide scan
    (82, 294, 218, 20, "货物或应税劳务、服务名称"), (374, 292, 78, 24, "规格型号"), (497, 289, 45, 28, "单位"),
    (579, 291, 64, 28, "数量"), (695, 291, 64, 28, "单价"), (827, 292, 61, 25, "金额"), (959, 291, 46, 27, "税率"),
    (1058, 292, 63, 25, "税额"), (47, 319, 180, 23, "*运输服务*客运服务费"), (649, 322, 12, 16, "1"),
    (725, 318, 54, 25, "13.32"), (892, 318, 55, 25, "13.32"), (966, 317, 46, 27, "免税"), (1122, 321, 55, 18, "* * *"),
    (138, 509, 103, 28, "合计"), (875, 512, 71, 25, "￥13.32"), (1125, 514, 57, 21, "* * *"),
    (118, 549, 143, 23, "价税合计（大写）"), (341, 548, 173, 26, "壹拾叁圆叁角贰分"), (934, 549, 132, 23, "(小写)￥13.32")]


@pytest.mark.parametrize("stamped", [False, True])
def test_a_stamps_words_pressed_over_the_invoices_titles_are_no_title(stamped):
    # a reimbursement seal's 商业保险, as tall as a title and a row together, took the titles' row and lost the
    # invoice's only item
    lines = [line(300, 40, "北京增值税电子普通发票", h=40), line(820, 110, "开票日期：2022年04月02日", width=260),
             *(line(x, y, text, width=w, h=h) for x, y, w, h, text in _INVOICE_AT_FULL_SIZE)]
    if stamped:
        lines += [line(414, 298, "商业保险", width=72, h=35), line(452, 338, "已报销", width=55, h=38)]
    claim = structure_page(page(lines, width=1190, height=800), verify=False)
    assert claim.doc_type.value == "vat_invoice"
    assert items_of(claim) == {("*运输服务*客运服务费", Decimal("13.32"))}


@pytest.mark.parametrize("words", ["报销专", "已报销", "理赔专用章", "现金收讫"])
def test_a_stamps_words_over_the_grid_are_no_item(words):
    # 报销专用 of a reimbursement seal, read level with a row's second figure, became an item
    claim = structure_page(page([
        *receipt_top(), line(100, 400, "收费项目"), line(300, 400, "金额（元）"), line(500, 400, "收费项目"),
        line(700, 400, "金额（元）"), line(100, 450, "西药费"), line(300, 450, "9870.67"),
        line(500, 452, words, h=40), line(700, 450, "1.43"), *footer()]), verify=False)
    assert items_of(claim) == {("西药费", Decimal("9870.67"))}


@pytest.mark.parametrize(("words", "total"), [
    ("武万肆仟染佰政拾元集角玖分整", Decimal("24790.79")),  # 政 for 玖, 集 for 柒 on a grey scan
    ("贰万肆仟柒佰玖拾元柒角玖分整", Decimal("24790.79")),
])
def test_total_in_words_with_look_alike_numerals(words, total):
    claim = structure_page(page([*receipt_top(), *grid(), line(100, 700, f"金额合计（大写）{words}", width=600)]),
                           verify=False)
    assert claim.total_words.value == total


@pytest.mark.parametrize("stamp_words", ["电子票据专用章", "财务专用章", "现金收讫", "香收费专用章"])
def test_the_seals_own_words_beside_the_payee_label_are_no_hospital(stamp_words):
    # on faded print the seal's bottom line 电子票据专用章 was read as the value of 收款单位（章）, a confident
    # hospital (with a character of the ring before it too: 香收费专用章); the seal's ring names the hospital instead,
    # reviewed
    from core.records import SealText

    lines = [*receipt_top(), *grid(), *footer(), line(60, 800, "收款单位（章）"), line(210, 806, stamp_words)]
    seal = SealText(box=((150, 700), (350, 700), (350, 900), (150, 900)), readings=(("南省直第三人民医院南省", 0.99),))
    hospital = structure_page(page(lines).model_copy(update={"seals": (seal,)}), verify=False).header["hospital"]
    assert hospital.value == "南省直第三人民医院" and hospital.needs_review
    assert "hospital" not in structure_page(page(lines), verify=False).header

"""Labels and column titles as other forms print them (issue 17, tenth round): hand-made receipts whose header,
totals, payments and item grid use the spellings and layouts of receipts from other provinces and hospitals
(settlement forms, older paper receipts, itemised lists), beside the national e-receipt's. Each case is one
line or one grid on a page that is otherwise the same; the page always exists (no real image needed).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from claims.structure import structure_page
from tests.test_claims_real_mechanisms import line, page, receipt_top

ADMITTED, DISCHARGED = date(2021, 4, 23), date(2021, 4, 30)


def grid(y0: float = 400) -> list:
    return [line(100, y0, "项目名称"), line(300, y0, "金额（元）"), line(450, y0, "备注"),
            line(100, y0 + 50, "检查费"), line(300, y0 + 50, "3334.20"),
            line(100, y0 + 100, "药费"), line(300, y0 + 100, "12.00")]


def footer(y: float = 700) -> list:
    return [line(100, y, "合计（大写）"), line(300, y, "叁仟叁佰肆拾陆元贰角"), line(800, y, "(小写)3346.20")]


def header_of(*lines):
    return structure_page(page([*receipt_top(), *lines, *grid(), *footer()]), verify=False).header


def value(fields, key):
    f = fields.get(key)
    return f.value if f is not None else None


# ---------------------------------------------------------------------------------------------
# dates


@pytest.mark.parametrize("text", [
    "入院日期：2021年04月23日10时21分",  # the time in 时 and 分
    "入院时间：2021-04-23 10:21:33",
    "入院日期：2021-04-23 星期五",  # a weekday after the date
    "入院日期：2021/04/23",
])
def test_a_date_with_its_time_or_weekday_is_the_date(text):
    assert value(header_of(line(60, 200, text, width=500)), "admitted") == ADMITTED


def test_a_date_with_trailing_digits_is_not_read_as_a_date():
    # 2021-04-231 is a misread, not 23 April with something after it: unread, so it is reviewed
    f = header_of(line(60, 200, "入院日期：2021-04-231")).get("admitted")
    assert f is not None and f.value is None and f.needs_review


def test_labels_as_column_titles_take_the_values_below_them():
    head = header_of(line(60, 160, "入院日期"), line(400, 160, "出院日期"), line(700, 160, "住院天数"),
                     line(60, 200, "2021-04-23"), line(400, 200, "2021-04-30"), line(700, 200, "7"))
    assert (value(head, "admitted"), value(head, "discharged")) == (ADMITTED, DISCHARGED)
    assert value(head, "stay_days") == "7"


def test_a_column_title_takes_no_value_of_the_wrong_grammar_below_it():
    # 入院日期 over a name: no date, so no admission date (and the name is not taken for one)
    head = header_of(line(60, 160, "入院日期"), line(400, 160, "科室"), line(60, 200, "张三"), line(400, 200, "内科"))
    assert value(head, "admitted") is None


def test_the_stay_period_on_the_line_below_its_label():
    head = header_of(line(60, 160, "住院时间："), line(60, 200, "2021-04-23至2021-04-30", width=400))
    assert (value(head, "admitted"), value(head, "discharged")) == (ADMITTED, DISCHARGED)


@pytest.mark.parametrize("text", ["开票时间：2021-04-30 14:21:22", "收费日期：2021-04-30", "开票日期：2021年04月30日"])
def test_issue_date_labels(text):
    assert value(header_of(line(60, 200, text, width=500)), "issue_date") == DISCHARGED


# ---------------------------------------------------------------------------------------------
# identifiers, people, hospital, insurance


@pytest.mark.parametrize(("text", "key", "want"), [
    ("住院号码：4938", "inpatient_no", "4938"),  # not 码:4938
    ("住院编号：4938", "inpatient_no", "4938"),
    ("票据号：0012345678", "bill_no", "0012345678"),
    ("发票号码：0012345678", "bill_no", "0012345678"),
    ("缴款人：张三", "payer", "张三"),
    ("付款人：张三", "payer", "张三"),
    ("医疗保险类型：新农合", "insurance_type", "新农合"),
    ("参保类型：城乡居民", "insurance_type", "城乡居民"),
    ("险种类型：职工基本医疗保险", "insurance_type", "职工基本医疗保险"),
])
def test_header_labels_of_other_forms(text, key, want):
    assert value(header_of(line(60, 200, text, width=500)), key) == want


@pytest.mark.parametrize("label", ["医疗机构名称：", "医院名称：", "定点医疗机构：", "开票单位：", "医疗机构："])
def test_hospital_labels_of_other_forms(label):
    head = header_of(line(60, 800, label + "郑州大学第一附属医院", width=700))
    assert value(head, "hospital") == "郑州大学第一附属医院"


def test_the_institution_type_is_still_not_the_hospital():
    head = header_of(line(60, 200, "医疗机构类型：综合医院", width=500))
    assert value(head, "institution_type") == "综合医院" and value(head, "hospital") is None


# ---------------------------------------------------------------------------------------------
# totals and payments


def claim_with(*lines):
    return structure_page(page([*receipt_top(), *grid(), *lines]), verify=False)


@pytest.mark.parametrize("text", ["合计：3346.20", "费用合计：3346.20", "金额合计：3346.20", "总金额：3346.20",
                                  "医疗费用总额：3346.20", "本次医疗费用总额：3346.20", "小写：3346.20", "总计：3346.20"])
def test_totals_in_figures_as_other_forms_label_them(text):
    claim = claim_with(line(60, 700, text, width=500))
    assert claim.total_figures is not None and claim.total_figures.value == Decimal("3346.20")


@pytest.mark.parametrize("text", ["人民币（大写）：叁仟叁佰肆拾陆元贰角", "大写：叁仟叁佰肆拾陆元贰角",
                                  "合计人民币（大写）：叁仟叁佰肆拾陆元贰角", "金额（大写）：叁仟叁佰肆拾陆元贰角",
                                  "合计（大写）：⊗叁仟叁佰肆拾陆元贰角"])  # a sign guarding the words
def test_totals_in_words_as_other_forms_label_them(text):
    claim = claim_with(line(60, 700, text, width=600))
    assert claim.total_words is not None and claim.total_words.value == Decimal("3346.20")


def test_the_figure_read_into_the_cell_of_the_words_is_the_total_in_figures():
    claim = claim_with(line(60, 700, "金额合计（大写）：叁仟叁佰肆拾陆元贰角 ￥3346.20", width=1000))
    assert claim.total_words.value == Decimal("3346.20") and claim.total_figures.value == Decimal("3346.20")


@pytest.mark.parametrize(("text", "key"), [
    ("统筹支付金额：1000.00", "fund"), ("基金支付：1000.00", "fund"), ("医保基金支付：1000.00", "fund"),
    ("自付金额：1000.00", "self_pay"), ("自费金额：1000.00", "self_expense"), ("大病保险支付：1000.00", "critical_illness"),
])
def test_payment_labels_of_other_forms(text, key):
    claim = claim_with(line(60, 760, text, width=500), *footer())
    assert {k: f.value for k, f in claim.payments.items()} == {key: Decimal("1000.00")}


def test_a_misread_refund_label_is_still_the_refund():
    # 追费金额 is one ideograph off 退费金额; 自费金额 is printed too but not spelt out, so it does not compete
    claim = claim_with(line(60, 760, "追费金额：10.00", width=400), *footer())
    assert value(claim.payments, "refund") == Decimal("10.00")


# ---------------------------------------------------------------------------------------------
# item grids


ITEMS = [("检查费", "334.20"), ("西药费", "12.00"), ("治疗费", "1,200.50"), ("床位费", "60")]
WANT = {(n, Decimal(a.replace(",", ""))) for n, a in ITEMS}
ITEM_FOOTER = [line(100, 650, "合计（大写）"), line(300, 650, "壹仟陆佰零陆元柒角"), line(800, 650, "(小写)1606.70")]


def items_read(lines) -> set:
    claim = structure_page(page([*receipt_top(), *lines, *ITEM_FOOTER]), verify=False)
    return {(i.name.value, i.amount.value) for i in claim.items}


@pytest.mark.parametrize("name_title", ["费别", "收费类别", "费用名称", "诊疗项目", "费用项目", "品名", "项 目"])
@pytest.mark.parametrize("amount_title", ["金额", "实收金额", "费用"])
def test_item_grids_under_the_titles_other_forms_print(name_title, amount_title):
    one = [line(100, 300, name_title), line(300, 300, amount_title)]
    two = [*one, line(700, 300, name_title), line(900, 300, amount_title)]
    for k, (n, a) in enumerate(ITEMS):
        one += [line(100, 350 + 50 * k, n), line(300, 350 + 50 * k, a)]
        x, y = (100 if k % 2 == 0 else 700), 350 + 50 * (k // 2)
        two += [line(x, y, n), line(x + 200, y, a)]
    assert items_read(one) == WANT
    assert items_read(two) == WANT  # two column groups across the page


@pytest.mark.parametrize("titles", ["费别金额", "收费类别金额", "费用名称实收金额", "诊疗项目费用", "品名金额"])
def test_titles_read_as_one_line_are_cut_apart(titles):
    amount = next(w for w in ("实收金额", "金额", "费用") if titles.endswith(w))
    x_amount = 100 + 20 * (len(titles) - len(amount))
    lines = [line(100, 300, titles)]
    for k, (n, a) in enumerate(ITEMS):
        lines += [line(100, 350 + 50 * k, n), line(x_amount, 350 + 50 * k, a)]
    assert items_read(lines) == WANT



@pytest.mark.parametrize("separator", ["；", ","])
def test_payments_strung_together_on_one_line(separator):
    text = separator.join(["统筹基金支付:2000.00", "个人账户支付:457.20", "现金支付:789.00"])
    claim = claim_with(line(60, 760, text, width=1400), *footer())
    assert {k: f.value for k, f in claim.payments.items()} == {
        "fund": Decimal("2000.00"), "account": Decimal("457.20"), "cash": Decimal("789.00")}


# ---------------------------------------------------------------------------------------------
# lines OCR joins or splits differently (found by perturbing a hand-made receipt: merged neighbours,
# labels apart from their values, boxes a few pixels off)


def test_the_stay_period_when_the_next_label_is_read_into_its_line():
    head = header_of(line(60, 200, "住院时间："), line(200, 200, "2021-04-23"),
                     line(400, 200, "到 2021-04-30 住院号：4938", width=450))
    assert (value(head, "admitted"), value(head, "discharged")) == (ADMITTED, DISCHARGED)
    assert value(head, "inpatient_no") == "4938"


def test_the_stay_period_when_its_boxes_overlap_a_little():
    head = header_of(line(57, 200, "住院时间： 2021-04-23", width=344), line(397, 200, "到 2021-04-30", width=240))
    assert (value(head, "admitted"), value(head, "discharged")) == (ADMITTED, DISCHARGED)


def test_a_value_cut_at_the_next_label_is_not_continued_into_that_labels_value():
    head = header_of(line(60, 800, "收款单位（章）："), line(340, 800, "郑州大学第一附属医院 收款人：", width=545),
                     line(910, 800, "李四"),
                     line(700, 160, "票据号码："), line(840, 160, "0012345678 校验码：", width=438), line(1300, 160, "d2cf01"))
    assert value(head, "hospital") == "郑州大学第一附属医院" and value(head, "cashier") == "李四"
    assert value(head, "bill_no") == "0012345678" and value(head, "check_code") == "d2cf01"


def test_a_row_whose_name_and_amount_ocr_read_as_one_line():
    lines = [line(100, 300, "项目名称"), line(300, 300, "金额（元）"), line(450, 300, "备注"),
             line(100, 350, "检查费 334.20", width=300)]
    for k, (n, a) in enumerate(ITEMS[1:], 1):
        lines += [line(100, 350 + 50 * k, n), line(300, 350 + 50 * k, a)]
    assert items_read(lines) == WANT


def test_a_name_with_a_dose_is_not_cut_at_its_figures():
    lines = [line(100, 300, "项目名称"), line(300, 300, "金额（元）"), line(100, 350, "伊曲康唑胶囊 0.1g*14", width=300)]
    for k, (n, a) in enumerate(ITEMS[1:], 1):
        lines += [line(100, 350 + 50 * k, n), line(300, 350 + 50 * k, a)]
    assert items_read(lines) == WANT - {ITEMS[0][:1] + (Decimal("334.20"),)}


def two_groups_with_quantities(row0_merged: bool = False) -> list:
    """An outpatient e-receipt's grid: two groups of 项目名称 | 数量/单位 | 金额（元） | 备注 across the page."""
    titles = ["项目名称", "数量/单位", "金额（元）", "备注"]
    offsets = [0, 140, 270, 390]
    lines = [line(40 + 480 * g + x, 300, t) for g in range(2) for x, t in zip(offsets, titles)]
    for k, (n, a) in enumerate(ITEMS):
        g, r = k % 2, k // 2
        x, y = 40 + 480 * g, 350 + 50 * r
        if row0_merged and k == 1:
            continue  # read with the row's first item below
        if row0_merged and k == 0:
            lines += [line(x, y, n), line(x + 140, y, "1项"),
                      line(x + 270, y, f"{a} {ITEMS[1][0]} 1项", width=400), line(x + 480 + 270, y, ITEMS[1][1])]
            continue
        lines += [line(x, y, n), line(x + 140, y, "1项"), line(x + 270, y, a)]
    return lines


def test_a_body_line_read_across_two_column_groups_is_cut_back_into_its_columns():
    assert items_read(two_groups_with_quantities()) == WANT
    assert items_read(two_groups_with_quantities(row0_merged=True)) == WANT


def test_a_long_name_run_on_over_the_next_column_is_not_cut():
    lines = [line(60, 300, "项目名称"), line(330, 300, "规格"), line(500, 300, "单位"), line(600, 300, "数量"),
             line(700, 300, "单价"), line(820, 300, "金额"),
             line(60, 350, "复方氨基酸注射液 18AA 250ml", width=400), line(500, 350, "瓶"), line(600, 350, "1"),
             line(700, 350, "45.00"), line(820, 350, "45.00")]
    claim = structure_page(page([*receipt_top(), *lines, *ITEM_FOOTER]), verify=False)
    assert [(i.name.value, i.amount.value) for i in claim.items] == [("复方氨基酸注射液18AA250ml", Decimal("45.00"))]


def test_a_paper_receipts_titles_and_a_row_read_as_one_line_each():
    # 收费项目 | 金额 | 个人支付金额 printed far apart and OCR'd as one line; a row's name, amount and self-pay too
    lines = [line(60, 250, "收费项目 金额 个人支付金额", width=495)]
    for k, (n, a) in enumerate(ITEMS):
        y = 300 + 45 * k
        if k == len(ITEMS) - 1:
            lines.append(line(60, y, f"{n} {a} 0.00", width=480))
        else:
            lines += [line(60, y, n), line(280, y, a), line(460, y, "0.00")]
    assert items_read(lines) == WANT


@pytest.mark.parametrize("read", ["280 0.00", "36282 03"])
def test_an_amount_read_across_a_gap_is_never_trusted(read):
    # two figures read together (an amount and the next column's), or a decimal point lost as a gap
    lines = [line(100, 300, "项目名称"), line(300, 300, "金额（元）"), line(100, 350, "床位费"), line(300, 350, read)]
    claim = structure_page(page([*receipt_top(), *lines, *ITEM_FOOTER]), verify=False)
    (item,) = claim.items
    assert item.amount.needs_review and "gap inside the figure" in item.amount.note

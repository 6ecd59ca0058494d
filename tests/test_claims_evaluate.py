"""Scoring a Claim against ground truth (claims.evaluate) on hand-made claims: no OCR, fast."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from claims.evaluate import Tally, score_claim
from core.records import BillField, Claim, DocumentType, FieldKind, Finding, LineItem

FIELDS = {  # the shape of ocr.synth meta["fields"], for a small outpatient receipt
    "kind": "outpatient",
    "title": "门诊收费票据",
    "hospital": "测试市人民医院",
    "header": {"票据代码": "123456789012", "票据号码": "0012345678", "开票日期": "2023年05月06日", "交款人": "张三"},
    "patient": {"门诊号": "12345678", "性别": "男"},
    "items": [],
    "categories": {"检查费": "12.50", "西药费": "1000.00"},
    "total": "1012.50",
    "total_words": "壹仟零壹拾贰元伍角整",
    "payments": {"医保统筹基金支付": "800.00", "个人现金支付": "212.50"},
    "footer": {"收款单位": "测试市人民医院"},
}
PRINTED_LINES = (
    "门诊收费票据", "票据代码：123456789012", "票据号码：0012345678", "开票日期：2023年05月06日", "交款人：张三",
    "门诊号：12345678", "性别：男", "项目名称", "金额", "检查费", "12.50", "西药费", "1,000.00",
    "合计(大写)：壹仟零壹拾贰元伍角整", "(小写)：¥1,012.50", "医保统筹基金支付：800.00", "个人现金支付：212.50",
    "收款单位：测试市人民医院",
)
PRINTED = "\n".join(PRINTED_LINES)  # the page's ground-truth text


def _f(name: str, value, kind: FieldKind = FieldKind.text, review: bool = False) -> BillField:
    return BillField(name=name, value=value, kind=kind, raw=str(value), needs_review=review)


def _amount(name: str, value: str, review: bool = False) -> BillField:
    return _f(name, Decimal(value), FieldKind.amount, review)


def _item(n: int, name: str, amount: str, review: bool = False) -> LineItem:
    return LineItem(line_no=n, name=_f("name", name), amount=_amount("amount", amount, review))


def perfect(**update) -> Claim:
    claim = Claim(
        doc_id="hand", doc_type=DocumentType.outpatient_e_receipt,
        header={"bill_code": _f("bill_code", "123456789012"), "bill_no": _f("bill_no", "0012345678"),
                "issue_date": _f("issue_date", date(2023, 5, 6), FieldKind.date), "payer": _f("payer", "张 三"),
                "outpatient_no": _f("outpatient_no", "12345678"), "sex": _f("sex", "男"),
                "hospital": _f("hospital", "测试市人民医院")},
        items=(_item(0, "检查费", "12.50"), _item(1, "西药费", "1000.00")),
        total_figures=_amount("total_figures", "1012.50"), total_words=_amount("total_words", "1012.50"),
        payments={"fund": _amount("fund", "800.00"), "cash": _amount("cash", "212.50")},
        findings=(Finding(rule="amounts.unverified", severity="info", detail="none"),))
    return claim.model_copy(update=update)


def test_perfect_claim_scores_one():
    s = score_claim(perfect(), FIELDS, PRINTED)
    assert s.header_n == s.header_ok == 11  # 4 header + 2 patient + 收款单位 + 2 totals + 2 payments
    assert (s.items_tp, s.items_pred, s.items_true) == (2, 2, 2)
    assert s.checks_pass and s.wrong_amounts == s.wrong_amounts_unflagged == 0
    t = Tally()
    t.add(s)
    summary = t.summary()
    assert summary["header_accuracy"] == summary["item_f1"] == summary["checks_pass_share"] == 1.0
    assert summary["wrong_amounts_not_flagged"] == 0


def test_wrong_unflagged_amount_is_counted():
    claim = perfect(total_figures=_amount("total_figures", "1012.80"),
                    items=(_item(0, "检查费", "12.80"), _item(1, "西药费", "1000.00")))
    s = score_claim(claim, FIELDS, PRINTED)
    assert s.wrong_amounts_unflagged == 2 and s.wrong_amounts == 2
    assert sorted(s.wrong_unflagged_fields) == ["items[0].amount", "total_figures"]
    assert s.header_ok == s.header_n - 1 and s.field_errors == {"小写": 1}
    assert (s.items_tp, s.items_pred) == (1, 2)
    assert s.checks_pass and s.wrong_amount_on_passing_bill  # the checks let it through: the worst case


def test_flagged_wrong_amount_is_not_counted():
    claim = perfect(payments={"fund": _amount("fund", "880.00", review=True), "cash": _amount("cash", "212.50")},
                    items=(_item(0, "检查费", "12.80", review=True), _item(1, "西药费", "1000.00")),
                    findings=(Finding(rule="payment.split", severity="error", detail="≠"),))
    s = score_claim(claim, FIELDS, PRINTED)
    assert s.wrong_amounts == 2 and s.wrong_amounts_unflagged == 0
    assert not s.checks_pass and s.blocking_rules == ["payment.split"]
    assert not s.wrong_amount_on_passing_bill


def test_extra_item_lowers_precision_only():
    claim = perfect(items=(_item(0, "检查费", "12.50"), _item(1, "西药费", "1000.00"), _item(2, "材料费", "3.00")))
    t = Tally()
    t.add(score_claim(claim, FIELDS, PRINTED))
    assert t.item_recall == 1.0 and t.item_precision == 2 / 3
    assert 0.79 < t.item_f1 < 0.81
    assert t.wrong_amounts_unflagged == 1  # 3.00 is no true amount, and nothing flagged it


def test_duplicate_prediction_matches_one_truth_item():
    claim = perfect(items=(_item(0, "检查费", "12.50"), _item(1, "检查费", "12.50", review=True)))
    s = score_claim(claim, FIELDS, PRINTED)
    assert (s.items_tp, s.items_pred, s.items_true) == (1, 2, 2)
    assert s.wrong_amounts_unflagged == 0 and s.wrong_amounts == 1  # the second copy, flagged


def test_missing_fields_and_unprinted_fields():
    claim = perfect(header={}, payments={})
    s = score_claim(claim, FIELDS, PRINTED)
    assert s.header_ok == 2 and s.header_n == 11  # only the two totals are left
    assert s.field_errors["票据代码 (missing)"] == 1
    # a field the page does not print is not expected
    s = score_claim(perfect(), FIELDS, PRINTED.replace("性别：男", ""))
    assert s.header_n == s.header_ok == 10


def test_itemised_truth_is_the_item_list():
    fields = FIELDS | {"kind": "itemised", "categories": {"西药费": "5.00"},
                       "items": [{"name": "阿莫西林胶囊", "amount": "5.00"}]}
    s = score_claim(perfect(items=(_item(0, "阿莫西林 胶囊", "5.00"),)), fields)
    assert (s.items_tp, s.items_pred, s.items_true) == (1, 1, 1)

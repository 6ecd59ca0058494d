"""Claims reconciliation rules on hand-made inputs: a tiny rules catalogue, class and disease dictionaries
written by the test (nothing from ../shared), one claim per rule kind."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from claims.reconcile import Charge, Diagnosis, RuleBook, Tolerance, VisitContext, disease_terms, reconcile
from core.records import Assertion, BillField, CatalogMatch, Claim, DocumentType, FieldKind, LineItem

DRUG_RULES = """药品编码,药品名称,险种限制,机构限制,就医限制,专科限制,性别限制,年龄限制,疾病限制,阶梯限制,疗程限制
XL01CDP001,紫杉醇注射液,,,,,,,(肿瘤|癌),,
XG03DAH002,黄体酮注射液,,,,,女,,,,
ZA06CAX003,小儿咳嗽宁糖浆,,,,,,儿童,,,
XB05BAZ004,复方氨基酸注射液,工伤,,,,,,,,
XJ01DDT005,头孢曲松钠注射液,,二级,,,,,,,14天
XA11CCA006,骨化三醇胶丸,,,住院,,,,,,
XL04AAE007,依维莫司片,,,,,,,,二线,
XA02BCO008,奥美拉唑肠溶胶囊,,,,,,,,,
"""
SERVICE_RULES = """诊疗编码,诊疗名称,险种限制,机构限制,就医限制,专科限制,性别限制,年龄限制,疾病限制,数量限制,频次限制,疗程限制,总额限制
003101000010000,心电监护,,,,,,,,24小时,,,
003105000020000,血液透析,,,,,,,,,1次每周,,
003106000030000,高压氧舱治疗,,,,,,,,,,3天,
003107000040000,人工耳蜗植入术,,,,,,,,,,,2000元
003108000050000,体表面积烧伤换药,,,,,,,,10个1%体表面积,,,
003109000060000,床位费,,,,,,,,,,,
"""
CLASSES = """类目编码,类目名称,费用项目,目录级别
XL01,抗肿瘤药,西药费,1
XA02,抗酸药,西药费,1
XJ01,抗菌药,西药费,1
ZA06,止咳,成药费,1
"""
SERVICE_CLASSES = """类目编码,类目名称,费用项目,国标通配,省标通配,目录级别
3101,监护,一般诊疗费,00310100,310100,0
"""
DISEASES = """类目类型,类目编码,类目名称,归并名称
西医诊断,C85.,非霍奇金淋巴瘤,肿瘤类疾病
西医诊断,J18.,肺炎,呼吸系统疾病
"""


@pytest.fixture(scope="module")
def book(tmp_path_factory):
    d = tmp_path_factory.mktemp("rules")
    paths = {}
    for name, text in {"drug.csv": DRUG_RULES, "service.csv": SERVICE_RULES, "classes.csv": CLASSES,
                       "svc_classes.csv": SERVICE_CLASSES, "diseases.csv": DISEASES}.items():
        (d / name).write_text(text, encoding="utf-8")
        paths[name] = d / name
    return RuleBook.load(rules=[paths["drug.csv"], paths["service.csv"]],
                         classes=[paths["classes.csv"], paths["svc_classes.csv"]], diseases=[paths["diseases.csv"]])


TOL = Tolerance()
ENC = "E1"


def f(name, value, kind=FieldKind.text):
    return BillField(name=name, value=value, kind=kind)


def line(no, name, qty, price, amount=None, code=None, unit=None):
    qty, price = Decimal(str(qty)), Decimal(str(price))
    amount = Decimal(str(amount)) if amount is not None else qty * price
    return LineItem(line_no=no, name=f("name", name), amount=f("amount", amount, FieldKind.amount),
                    quantity=f("quantity", qty, FieldKind.number), unit_price=f("unit_price", price, FieldKind.number),
                    unit=f("unit", unit) if unit else None,
                    match=CatalogMatch(code=code, name=name, score=100, method="exact") if code else None)


def itemised(*items, doc="d1", header=None):
    return Claim(doc_id=doc, doc_type=DocumentType.itemised_list, items=tuple(items),
                 header={k: f(k, v) for k, v in (header or {}).items()})


def charge(i, name, qty, price, code="", day=None, amount=None, category=None):
    qty, price = Decimal(str(qty)), Decimal(str(price))
    return Charge(charge_id=f"c{i}", encounter_id=ENC, code=code, name=name, quantity=qty, unit_price=price,
                  amount=Decimal(str(amount)) if amount is not None else qty * price, day=day, category=category)


CTX = VisitContext(patient_id="P1", encounter_id=ENC, sex="女", birth_date=date(1970, 1, 1), insurance_type="工伤保险",
                   institution_level=3, setting="inpatient", admitted=date(2026, 3, 1), discharged=date(2026, 3, 5),
                   records=1, diagnoses=(Diagnosis(name="肺炎", doc_id="doc1", sentence=0, evidence="诊断：肺炎"),))


def rules_of(rec):
    return sorted(f.rule for f in rec.findings)


def test_clean_control_has_no_finding(book):
    charges = [charge(1, "奥美拉唑肠溶胶囊", 2, "3.5", day=date(2026, 3, 1)),
               charge(2, "床位费", 4, "50", day=date(2026, 3, 1))]
    claim = itemised(line(1, "奥美拉唑肠溶胶囊", 2, "3.5"), line(2, "床位费", 4, 50))
    rec = reconcile(claim, charges=charges, context=CTX, rulebook=book, tolerance=TOL)
    assert rec.findings == ()


def test_billed_not_charged_and_charged_not_billed(book):
    charges = [charge(1, "奥美拉唑肠溶胶囊", 2, "3.5"), charge(2, "床位费", 4, 50)]
    claim = itemised(line(1, "奥美拉唑肠溶胶囊", 2, "3.5"), line(2, "静脉输液", 1, 10))
    rec = reconcile(claim, charges=charges, context=CTX, rulebook=book, tolerance=TOL)
    assert rules_of(rec) == ["recon.billed_not_charged", "recon.charged_not_billed"]
    bnc = next(x for x in rec.findings if x.rule == "recon.billed_not_charged")
    assert "静脉输液" in bnc.message and bnc.evidence["claim_fields"]["name"] == "静脉输液"
    cnb = next(x for x in rec.findings if x.rule == "recon.charged_not_billed")
    assert cnb.evidence["charges"][0]["charge_id"] == "c2" and cnb.severity == "warning"


@pytest.mark.parametrize(("bill", "rule"), [
    (line(1, "奥美拉唑肠溶胶囊", 3, "3.5"), "recon.quantity_mismatch"),
    (line(1, "奥美拉唑肠溶胶囊", 2, "4.5"), "recon.unit_price_mismatch"),
    (line(1, "奥美拉唑肠溶胶囊", 2, "3.5", amount="9.00"), "recon.amount_mismatch"),
])
def test_differences_beyond_tolerance(book, bill, rule):
    charges = [charge(1, "奥美拉唑肠溶胶囊", 2, "3.5")]
    rec = reconcile(itemised(bill), charges=charges, context=CTX, rulebook=book, tolerance=TOL)
    assert rules_of(rec) == [rule]
    assert rec.findings[0].evidence["charges"][0]["charge_id"] == "c1"


def test_tolerance_is_a_setting(book):
    charges = [charge(1, "奥美拉唑肠溶胶囊", 2, "3.5")]
    claim = itemised(line(1, "奥美拉唑肠溶胶囊", 2, "3.5", amount="7.30"))
    assert rules_of(reconcile(claim, charges=charges, context=CTX, rulebook=book, tolerance=TOL)) == ["recon.amount_mismatch"]
    loose = Tolerance(amount=Decimal("0.5"))
    assert reconcile(claim, charges=charges, context=CTX, rulebook=book, tolerance=loose).findings == ()


def test_fuzzy_pairing_of_a_misread_name(book):
    charges = [charge(1, "奥美拉唑肠溶胶囊", 2, "3.5")]
    rec = reconcile(itemised(line(1, "奥美拉挫肠溶胶囊", 2, "3.5")), charges=charges, context=CTX, rulebook=book,
                    tolerance=TOL)
    assert rec.findings == ()


def test_category_total_of_an_e_receipt(book):
    receipt = Claim(doc_id="r1", doc_type=DocumentType.inpatient_e_receipt, items=(
        LineItem(line_no=1, name=f("name", "西药费"), amount=f("amount", Decimal("120.00"), FieldKind.amount)),
        LineItem(line_no=2, name=f("name", "中成药费"), amount=f("amount", Decimal("30.00"), FieldKind.amount)),
        LineItem(line_no=3, name=f("name", "其他住院费用"), amount=f("amount", Decimal("5.00"), FieldKind.amount))))
    charges = [charge(1, "紫杉醇注射液", 1, 100, code="XL01CDP001"), charge(2, "奥美拉唑", 1, 10, code="XA02BCO008"),
               charge(3, "小儿咳嗽宁糖浆", 1, 30, code="ZA06CAX003"), charge(4, "陪护费", 1, 5, category="其他住院费用")]
    rec = reconcile(receipt, charges=charges, context=CTX, rulebook=book, tolerance=TOL)
    assert rules_of(rec) == ["recon.category_total"]
    got = rec.findings[0]
    assert got.evidence["category"] == "西药费" and got.evidence["charged_total"] == "110"
    ok = receipt.model_copy(update={"items": (receipt.items[0].model_copy(update={
        "amount": f("amount", Decimal("110.00"), FieldKind.amount)}), *receipt.items[1:])})
    assert reconcile(ok, charges=charges, context=CTX, rulebook=book, tolerance=TOL).findings == ()
    # the remainder line (其他住院费用) holds what no printed category does: here also an unmapped charge
    more = [*charges, charge(5, "营养配餐", 1, 12)]
    got = reconcile(ok, charges=more, context=CTX, rulebook=book, tolerance=TOL).findings
    assert [x.rule for x in got] == ["recon.category_total"] and got[0].evidence["charged_total"] == "17"
    # without a remainder line, charges of a category the receipt does not print are a finding of their own
    bare = ok.model_copy(update={"items": ok.items[:2]})
    got = reconcile(bare, charges=more, context=CTX, rulebook=book, tolerance=TOL).findings
    assert [x.rule for x in got] == ["recon.category_total"] and "其他住院费用" in got[0].evidence["categories"]


def test_a_price_changed_during_the_stay_billed_at_the_average(book):
    charges = [charge(1, "奥美拉唑肠溶胶囊", 2, "3.5"), charge(2, "奥美拉唑肠溶胶囊", 2, "4.5")]
    claim = itemised(line(1, "奥美拉唑肠溶胶囊", 4, "4", amount="16.00"))
    assert reconcile(claim, charges=charges, context=CTX, rulebook=book, tolerance=TOL).findings == ()


def test_an_item_allowed_by_one_of_its_rows(book, tmp_path):
    p = tmp_path / "rows.csv"
    p.write_text("药品编码,药品名称,性别限制,疾病限制,阶梯限制\nX1,某靶向药,,(肿瘤|癌),\nX1,某靶向药,女,(a.*b),\n",
                 encoding="utf-8")
    two = RuleBook.load(rules=[p])
    claim = itemised(line(1, "某靶向药", 1, 100))
    ch = [charge(1, "某靶向药", 1, 100, code="X1")]
    ctx = _with_dx(Diagnosis(name="肺腺癌", doc_id="d", sentence=0))
    assert reconcile(claim, charges=ch, context=ctx, rulebook=two, tolerance=TOL).findings == ()
    got = reconcile(claim, charges=ch, context=CTX, rulebook=two, tolerance=TOL).findings
    assert sorted(x.rule for x in got) == ["recon.rule.uninterpretable"]  # row 1 broken, row 2 unreadable: open


def test_duplicates(book):
    charges = [charge(1, "奥美拉唑肠溶胶囊", 2, "3.5"), charge(2, "床位费", 4, 50), charge(3, "心电图", 1, 30)]
    a = itemised(line(1, "奥美拉唑肠溶胶囊", 2, "3.5"), line(2, "床位费", 4, 50), line(3, "心电图", 1, 30), doc="a",
                 header={"bill_code": "1101", "bill_no": "0001"})
    same_file = a.model_copy()
    same_bill = a.model_copy(update={"doc_id": "rescan"})
    rec = reconcile(a, claim_id="A", charges=charges, context=CTX, tolerance=TOL, others=[("A2", same_file)])
    assert rules_of(rec) == ["recon.duplicate.same_file"]
    rec = reconcile(a, claim_id="A", charges=charges, context=CTX, tolerance=TOL, others=[("A3", same_bill)])
    assert rules_of(rec) == ["recon.duplicate.same_file"]
    near = itemised(*a.items, doc="b", header={"bill_code": "1101", "bill_no": "0002"})
    rec = reconcile(a, claim_id="A", charges=charges, context=CTX, tolerance=TOL, others=[("B", near)])
    assert rules_of(rec) == ["recon.duplicate.near_bill"]
    # one line of this bill also on another bill of the stay: together more than charged
    first = itemised(line(1, "奥美拉唑肠溶胶囊", 2, "3.5"), line(2, "床位费", 2, 50), doc="c")
    second = itemised(line(1, "心电图", 1, 30), line(2, "床位费", 2, 50), line(3, "奥美拉唑肠溶胶囊", 2, "3.5"), doc="e")
    rec = reconcile(first, claim_id="C", charges=charges, context=CTX, tolerance=TOL, others=[("E", second)])
    assert rules_of(rec) == ["recon.duplicate.items_in_stay"]
    assert rec.findings[0].evidence["other_claims"] == ["E"]
    # the stay split over two bills without overlap: nothing
    second_ok = itemised(line(1, "心电图", 1, 30), line(2, "床位费", 2, 50), doc="e")
    assert reconcile(first, claim_id="C", charges=charges, context=CTX, tolerance=TOL,
                     others=[("E", second_ok)]).findings == ()


@pytest.mark.parametrize(("name", "code", "ctx_update", "rule"), [
    ("黄体酮注射液", "XG03DAH002", {"sex": "男"}, "recon.restriction.sex"),
    ("小儿咳嗽宁糖浆", "ZA06CAX003", {}, "recon.restriction.age"),
    ("复方氨基酸注射液", "XB05BAZ004", {"insurance_type": "城镇职工基本医疗保险"}, "recon.restriction.insurance"),
    ("头孢曲松钠注射液", "XJ01DDT005", {"institution_level": 1}, "recon.restriction.level"),
    ("骨化三醇胶丸", "XA11CCA006", {"setting": "outpatient", "admitted": None, "discharged": None}, "recon.restriction.setting"),
])
def test_context_restrictions(book, name, code, ctx_update, rule):
    charges = [charge(1, name, 1, 10, code=code, day=date(2026, 3, 1))]
    ctx = CTX.model_copy(update=ctx_update)
    rec = reconcile(itemised(line(1, name, 1, 10)), charges=charges, context=ctx, rulebook=book, tolerance=TOL)
    assert rules_of(rec) == [rule]
    assert rec.findings[0].evidence["catalogue"]["code"] == code and rec.findings[0].message
    assert reconcile(itemised(line(1, name, 1, 10)), charges=charges, context=CTX, rulebook=book,
                     tolerance=TOL).findings == () or rule == "recon.restriction.age"


def test_age_is_taken_at_the_date_of_service(book):
    charges = [charge(1, "小儿咳嗽宁糖浆", 1, 10, day=date(2026, 3, 1))]
    child = CTX.model_copy(update={"birth_date": date(2008, 3, 2)})  # 17 on admission, 18 the next day
    claim = itemised(line(1, "小儿咳嗽宁糖浆", 1, 10))
    assert reconcile(claim, charges=charges, context=child, rulebook=book, tolerance=TOL).findings == ()
    adult = CTX.model_copy(update={"birth_date": date(2008, 2, 28)})
    assert rules_of(reconcile(claim, charges=charges, context=adult, rulebook=book, tolerance=TOL)) == [
        "recon.restriction.age"]


def test_unknown_fact_is_unverified_not_passed(book):
    charges = [charge(1, "黄体酮注射液", 1, 10)]
    ctx = CTX.model_copy(update={"sex": None})
    rec = reconcile(itemised(line(1, "黄体酮注射液", 1, 10)), charges=charges, context=ctx, rulebook=book, tolerance=TOL)
    assert rules_of(rec) == ["recon.restriction.unverified"] and rec.findings[0].severity == "info"


def _with_dx(*dx):
    return CTX.model_copy(update={"diagnoses": dx})


TAXOL = [charge(1, "紫杉醇注射液", 1, 300, code="XL01CDP001")]


def _taxol(ctx, book):
    return reconcile(itemised(line(1, "紫杉醇注射液", 1, 300)), charges=TAXOL, context=ctx, rulebook=book, tolerance=TOL)


def test_disease_restriction_without_an_affirmed_tumour(book):
    rec = _taxol(CTX, book)
    assert rules_of(rec) == ["recon.restriction.disease"]
    got = rec.findings[0]
    assert got.severity == "error" and "(肿瘤|癌)" in got.message and got.evidence["rule"]["text"] == "(肿瘤|癌)"
    assert got.evidence["facts"]["satisfied_by"] == [] and got.evidence["facts"]["affirmed_diagnoses"] == ["肺炎"]


@pytest.mark.parametrize("assertion", [Assertion.negated, Assertion.family, Assertion.possible, Assertion.historical])
def test_negated_or_family_diagnosis_never_satisfies_a_disease_restriction(book, assertion):
    dx = Diagnosis(name="肺癌", assertion=assertion, doc_id="doc9", sentence=2, evidence="否认肺癌病史")
    rec = _taxol(_with_dx(dx), book)
    assert rules_of(rec) == ["recon.restriction.disease"]
    facts = rec.findings[0].evidence["facts"]
    assert facts["not_counted"][0]["doc_id"] == "doc9" and facts["not_counted"][0]["assertion"] == assertion.value
    assert "不计入" in rec.findings[0].message


def test_affirmed_diagnosis_satisfies_and_is_cited(book):
    dx = Diagnosis(name="右肺腺癌", doc_id="doc7", sentence=3, evidence="病理示右肺腺癌")
    rec = _taxol(_with_dx(Diagnosis(name="肺癌", assertion=Assertion.family, doc_id="d0", sentence=0), dx), book)
    assert rec.findings == ()
    cited = rec.passed[0]["evidence"]["satisfied_by"][0]
    assert (cited["doc_id"], cited["sentence"], cited["method"], cited["certainty"]) == ("doc7", 3, "text", 1.0)


def test_disease_mapped_through_the_dictionary_says_how_sure(book):
    rec = _taxol(_with_dx(Diagnosis(name="非霍奇金淋巴瘤", doc_id="doc8", sentence=1)), book)
    assert rec.findings == ()
    cited = rec.passed[0]["evidence"]["satisfied_by"][0]
    assert cited["method"] == "dictionary" and 0.8 <= cited["certainty"] <= 1.0 and "肿瘤类疾病" in cited["via"]


def test_no_clinical_record_is_a_warning(book):
    rec = _taxol(CTX.model_copy(update={"diagnoses": (), "records": 0}), book)
    assert rules_of(rec) == ["recon.restriction.disease"] and rec.findings[0].severity == "warning"
    assert "没有该患者的病历" in rec.findings[0].message


def test_uninterpretable_rule_is_reported(book):
    charges = [charge(1, "依维莫司片", 1, 100)]
    rec = reconcile(itemised(line(1, "依维莫司片", 1, 100)), charges=charges, context=CTX, rulebook=book, tolerance=TOL)
    assert rules_of(rec) == ["recon.rule.uninterpretable"]
    assert rec.findings[0].evidence["rule"] == {"kind": "step", "text": "二线"}
    assert disease_terms("(肿瘤|癌)") == ["肿瘤", "癌"] and disease_terms("(a.*b)") is None


def test_quantity_frequency_course_and_total_limits(book):
    days = [date(2026, 3, d) for d in range(1, 6)]  # a 5-day stay
    charges = [charge(1, "心电监护", 130, 5, day=days[0]), charge(2, "血液透析", 2, 400, day=days[1]),
               charge(3, "高压氧舱治疗", 1, 80, day=days[0]), charge(4, "高压氧舱治疗", 1, 80, day=days[4]),
               charge(5, "人工耳蜗植入术", 1, 2500, day=days[2]), charge(6, "头孢曲松钠注射液", 1, 20, day=days[0])]
    claim = itemised(line(1, "心电监护", 130, 5, unit="小时"), line(2, "血液透析", 2, 400), line(3, "高压氧舱治疗", 2, 80),
                     line(4, "人工耳蜗植入术", 1, 2500), line(5, "头孢曲松钠注射液", 1, 20))
    rec = reconcile(claim, charges=charges, context=CTX, rulebook=book, tolerance=TOL)
    assert rules_of(rec) == ["recon.limit.course", "recon.limit.frequency", "recon.limit.quantity", "recon.limit.total"]
    by = {x.rule: x for x in rec.findings}
    assert by["recon.limit.quantity"].evidence["allowed"] == "120" and by["recon.limit.frequency"].evidence["allowed"] == 1
    assert by["recon.limit.course"].evidence["days_used"] == 5
    ok = itemised(line(1, "心电监护", 100, 5, unit="小时"), line(2, "血液透析", 1, 400), line(5, "头孢曲松钠注射液", 1, 20))
    ok_charges = [charge(1, "心电监护", 100, 5, day=days[0]), charge(2, "血液透析", 1, 400, day=days[1]), charges[-1]]
    assert reconcile(ok, charges=ok_charges, context=CTX, rulebook=book, tolerance=TOL).findings == ()


def test_quantity_limit_in_a_unit_the_bill_does_not_print_is_uninterpretable(book):
    charges = [charge(1, "体表面积烧伤换药", 3, 50)]
    rec = reconcile(itemised(line(1, "体表面积烧伤换药", 3, 50, unit="次")), charges=charges, context=CTX, rulebook=book,
                    tolerance=TOL)
    assert rules_of(rec) == ["recon.rule.uninterpretable"]


def test_findings_are_json_ready(book):
    import json

    rec = _taxol(CTX, book)
    json.dumps(rec.to_json(), ensure_ascii=False)


def test_a_misread_name_is_paired_by_its_figures(book):
    charges = [charge(1, "奥美拉唑肠溶胶囊", 2, "3.5"), charge(2, "雾化吸入", 3, 10)]
    misread = itemised(line(1, "臭美拉挫肠溶胶囊", 2, "3.5"), line(2, "雾化吸人", 3, 10))  # two and one characters off
    assert reconcile(misread, charges=charges, context=CTX, rulebook=book, tolerance=TOL).findings == ()
    # the same misread with other figures: the one line and the one charge nothing else accounts for, names alike
    other = itemised(line(1, "臭美拉挫肠溶胶囊", 5, "3.5"), line(2, "雾化吸入", 3, 10))
    rec = reconcile(other, charges=charges, context=CTX, rulebook=book, tolerance=TOL)
    assert rules_of(rec) == ["recon.quantity_mismatch"]
    assert rec.findings[0].evidence["paired_by"] == [{"line_no": 1, "method": "leftover name", "score": 75.0}]
    # names not alike: two findings
    unlike = itemised(line(1, "静脉采血", 5, "3.5"), line(2, "雾化吸入", 3, 10))
    rules = rules_of(reconcile(unlike, charges=charges, context=CTX, rulebook=book, tolerance=TOL))
    assert rules == ["recon.billed_not_charged", "recon.charged_not_billed"]


def test_a_diagnosis_inside_a_longer_class_name_is_not_that_class(tmp_path):
    d = tmp_path / "d.csv"
    d.write_text("类目类型,类目编码,类目名称,归并名称\n西医诊断,I66.,大脑动脉的闭塞和狭窄，未造成脑梗死,心血管系统疾病\n"
                 "西医诊断,I63.,脑梗死,心血管系统疾病\n", encoding="utf-8")
    r = tmp_path / "r.csv"
    r.write_text("诊疗编码,诊疗名称,疾病限制\n003202000100000,经皮动脉支架置入术,(狭窄)\n", encoding="utf-8")
    book2 = RuleBook.load(rules=[r], diseases=[d])
    assert [c.code for c, _ in book2.disease_classes("急性脑梗死", 80)] == ["I63."]
    claim = itemised(line(1, "经皮动脉支架置入术", 1, 3000))
    ch = [charge(1, "经皮动脉支架置入术", 1, 3000, code="003202000100000")]
    rec = reconcile(claim, charges=ch, context=_with_dx(Diagnosis(name="脑梗死", doc_id="d", sentence=0)),
                    rulebook=book2, tolerance=TOL)
    assert rules_of(rec) == ["recon.restriction.disease"]


def test_rulebook_from_settings(tmp_path):
    import os

    from core.settings import Settings

    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    a.write_text(DRUG_RULES, encoding="utf-8")
    b.write_text(SERVICE_RULES, encoding="utf-8")
    assert RuleBook.from_settings(Settings()) is None or os.environ.get("MEDKG_RECONCILE_RULES")
    got = RuleBook.from_settings(Settings(reconcile_rules=f"{a}{os.pathsep}{b}"))
    assert got.entry("XL01CDP001", None)[0].name == "紫杉醇注射液" and got.entry("003101000010000", None)[0]

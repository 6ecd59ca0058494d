"""Catalogue loading, name normalisation, matching, restriction rules, and the matching benchmark."""

from __future__ import annotations

import csv
from decimal import Decimal
from pathlib import Path

import pytest

from claims.catalogue import Catalogue, ColumnMap
from claims.names import normalise_name
from claims.restrictions import PatientContext, match_claim, parse_age_years, restriction_findings
from core.records import BillField, Claim, DocumentType, LineItem

CATALOG = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "catalog"  # ../shared/data/catalog

# a bureau's own file, made up for the tests: its own headers, its own codes
ROWS = [
    {"项目编码": "D001", "项目名称": "阿莫西林胶囊", "费用类别": "西药费", "限定性别": "", "限定年龄": "", "医院等级": ""},
    {"项目编码": "D002", "项目名称": "氯化钾缓释片", "费用类别": "西药费", "限定性别": "", "限定年龄": "", "医院等级": "二级"},
    {"项目编码": "D003", "项目名称": "小儿咳嗽糖浆", "费用类别": "中成药费", "限定性别": "", "限定年龄": "儿童", "医院等级": ""},
    {"项目编码": "D004", "项目名称": "缩宫素注射液", "费用类别": "西药费", "限定性别": "女", "限定年龄": "", "医院等级": ""},
    {"项目编码": "D004", "项目名称": "注射用缩宫素", "费用类别": "西药费", "限定性别": "女", "限定年龄": "", "医院等级": ""},
    {"项目编码": "S001", "项目名称": "卵巢修补术", "费用类别": "手术费", "限定性别": "女", "限定年龄": "", "医院等级": ""},
    {"项目编码": "S002", "项目名称": "卵巢修补术(经腹腔镜加收)", "费用类别": "手术费", "限定性别": "女", "限定年龄": "",
     "医院等级": ""},
    {"项目编码": "S003", "项目名称": "血常规检查", "费用类别": "化验费", "限定性别": "", "限定年龄": "", "医院等级": ""},
    {"项目编码": "S004", "项目名称": "彩色多普勒超声常规检查", "费用类别": "检查费", "限定性别": "", "限定年龄": "",
     "医院等级": ""},
    {"项目编码": "S005", "项目名称": "新生儿蓝光治疗", "费用类别": "治疗费", "限定性别": "", "限定年龄": "新生儿",
     "医院等级": "三级"},
]
COLUMNS = ColumnMap(code="项目编码", name="项目名称", category="费用类别",
                    restrictions={"sex": "限定性别", "age": "限定年龄", "level": "医院等级"})


@pytest.fixture(scope="module")
def cat() -> Catalogue:
    return Catalogue.from_rows(ROWS, COLUMNS)


@pytest.mark.parametrize("printed, key", [
    ("阿莫西林胶囊（进口） 0.25g×24粒", "阿莫西林胶囊"),
    ("阿莫西林胶囊0.25g x 24粒", "阿莫西林胶囊"),
    ("布洛芬缓释胶囊(0.3g*20粒)", "布洛芬缓释胶囊"),
    ("头孢曲松钠针剂[罗氏芬]", "头孢曲松钠注射液"),  # trade name dropped, dosage-form synonym folded
    ("阿莫西林胶囊剂(甲类)", "阿莫西林胶囊"),
    ("复方氨基酸注射液（18AA-Ⅱ）", "复方氨基酸注射液(18aa-ii)"),  # identity in brackets kept
    ("卵巢修补术(经腹腔镜加收)", "卵巢修补术(经腹腔镜加收)"),
    ("脂肪乳(20%)/氨基酸(16)/葡萄糖(36%)注射液", "脂肪乳(20%)/氨基酸(16)/葡萄糖(36%)注射液"),
    ("维生素B12 0.5mg", "维生素b12"),
    ("重组人白介素-11", "重组人白介素-11"),
    ("血 常 规 检 查", "血常规检查"),
    ("Ｏ—157大肠埃希菌培养", "o-157大肠埃希菌培养"),
])
def test_normalise_name(printed, key):
    assert normalise_name(printed) == key


def test_column_map_guess():
    cols = ColumnMap.guess(["药品编码", "药品名称", "险种限制", "机构限制", "性别限制", "年龄限制", "疾病限制"])
    assert (cols.code, cols.name, cols.category) == ("药品编码", "药品名称", None)
    assert cols.restrictions == {"sex": "性别限制", "age": "年龄限制", "insurance": "险种限制", "level": "机构限制",
                                 "disease": "疾病限制"}
    with pytest.raises(ValueError, match="ColumnMap"):
        ColumnMap.guess(["a", "b"])


def test_match_exact_fuzzy_and_unmatched(cat):
    m = cat.match("阿莫西林胶囊(进口) 0.25g×24粒")
    assert (m.code, m.method, m.score, m.category) == ("D001", "exact", 100.0, "西药费")
    m = cat.match("氯化钾缓释爿")  # OCR: 片 → 爿
    assert m.code == "D002" and m.method == "fuzzy" and m.score < 100
    m = cat.match("卵巢修补术（经腹腔镜加收）")
    assert m.code == "S002" and m.alternatives[0].code == "S001"
    assert cat.match("卵巢修补木").code == "S001"
    assert cat.match("心电图检查") is None  # not in this catalogue
    assert cat.search("心电图检查", 3)  # … but a reviewer still sees candidates
    assert cat.match("氯化钾缓释爿", threshold=100.0) is not None  # accepted on its lead over any rival
    assert cat.match("") is None


def test_synonym_rows_share_a_code(cat):
    assert [e.name for e in cat.by_code("D004")] == ["缩宫素注射液", "注射用缩宫素"]
    assert cat.match("注射用缩宫素").code == "D004"


def test_from_csv_and_xlsx(tmp_path, cat):
    path = tmp_path / "bureau.csv"
    with open(path, "w", newline="", encoding="utf-8-sig") as fh:
        w = csv.DictWriter(fh, fieldnames=list(ROWS[0]))
        w.writeheader()
        w.writerows(ROWS)
    from_csv = Catalogue.from_csv(path, COLUMNS)
    assert [(e.code, e.name, e.rules) for e in from_csv.entries] == [(e.code, e.name, e.rules) for e in cat.entries]

    openpyxl = pytest.importorskip("openpyxl")
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["编码", "名称", "类别"])
    ws.append([1001, "血常规检查", "化验费"])  # a numeric code cell
    ws.append(["1002", "尿常规检查", "化验费"])
    ws.append([None, None, None])
    wb.save(tmp_path / "bureau.xlsx")
    from_xlsx = Catalogue.from_xlsx(tmp_path / "bureau.xlsx")
    assert [(e.code, e.name, e.category) for e in from_xlsx.entries] == [("1001", "血常规检查", "化验费"),
                                                                       ("1002", "尿常规检查", "化验费")]
    assert from_xlsx.match("血常規检查").code == "1001"


def test_restriction_findings(cat):
    entry = cat.by_code("S001")[0]  # 限女
    assert restriction_findings(entry, PatientContext(sex="女")) == []
    (f,) = restriction_findings(entry, PatientContext(sex="男"))
    assert f.rule == "restriction.sex" and f.severity == "error" and "'女'" in f.detail and "男" in f.detail
    (f,) = restriction_findings(entry, PatientContext())
    assert f.severity == "info" and "sex not printed" in f.detail

    kid = cat.by_code("D003")[0]  # 儿童
    assert restriction_findings(kid, PatientContext(age_years=6)) == []
    assert restriction_findings(kid, PatientContext(age_years=45))[0].rule == "restriction.age"

    level = cat.by_code("D002")[0]  # 二级 and above
    assert restriction_findings(level, PatientContext(institution_level=3)) == []
    assert restriction_findings(level, PatientContext(institution_level=1))[0].rule == "restriction.level"

    baby = cat.by_code("S005")[0]  # 新生儿, 三级
    findings = restriction_findings(baby, PatientContext(age_years=parse_age_years("2月"), institution_level=2))
    assert {f.rule for f in findings} == {"restriction.age", "restriction.level"}


def test_insurance_setting_disease_and_alternative_rows():
    rows = [
        {"code": "X1", "name": "某注射液", "insurance": "工伤", "setting": "", "disease": ""},
        {"code": "X2", "name": "某片", "insurance": "", "setting": "住院", "disease": "(肿瘤|癌)"},
        {"code": "X3", "name": "某胶囊", "insurance": "", "setting": "", "disease": "(乙型肝炎)"},
        {"code": "X3", "name": "某胶囊", "insurance": "", "setting": "", "disease": "(丙型肝炎)"},
    ]
    cols = ColumnMap("code", "name", restrictions={"insurance": "insurance", "setting": "setting",
                                                    "disease": "disease"})
    c = Catalogue.from_rows(rows, cols)
    (x1,), (x2,), (x3,) = c.by_code("X1"), c.by_code("X2"), c.by_code("X3")
    assert restriction_findings(x1, PatientContext(insurance_type="工伤保险")) == []
    assert restriction_findings(x1, PatientContext(insurance_type="城镇职工基本医疗保险"))[0].severity == "error"
    out = restriction_findings(x2, PatientContext(setting="outpatient", diagnoses=("肺癌",)))
    assert [f.rule for f in out] == ["restriction.setting"]
    assert len(x3.rules) == 2  # one code, two rows: either condition allows it
    assert restriction_findings(x3, PatientContext(diagnoses=("慢性丙型肝炎",))) == []
    assert restriction_findings(x3, PatientContext(diagnoses=("高血压",)))[0].rule == "restriction.disease"
    assert restriction_findings(x3, PatientContext())[0].severity == "info"


def test_match_claim(cat):
    def line(n, name, amount):
        return LineItem(line_no=n, name=BillField(name="name", value=name, raw=name),
                        amount=BillField(name="amount", value=Decimal(amount), raw=amount))

    claim = Claim(doc_id="d", doc_type=DocumentType.outpatient_e_receipt,
                  header={"sex": BillField(name="sex", value="男"), "age": BillField(name="age", value="45岁")},
                  items=(line(1, "阿莫西林胶囊 0.25g×24粒", "12.00"), line(2, "小儿咳嗽糖桨", "8.00"),
                         line(3, "卵巢修补术", "300.00"), line(4, "心电图检查", "20.00")))
    ctx = PatientContext.from_claim(claim, institution_level=3)
    assert (ctx.sex, ctx.age_years, ctx.setting) == ("男", 45.0, "outpatient")
    out = match_claim(claim, cat, ctx)
    assert [it.match.code if it.match else None for it in out.items] == ["D001", "D003", "S001", None]
    rules = sorted(f.rule for f in out.findings)
    assert rules == ["catalogue.unmatched", "restriction.age", "restriction.sex"]
    assert Claim.model_validate_json(out.model_dump_json()) == out


@pytest.mark.slow
def test_benchmark_top1_on_ocr_corrupted_names(monkeypatch):
    """The issue's bar: top-1 ≥ 0.95 at the default threshold on OCR-corrupted catalogue names (test split)."""
    if not CATALOG.is_dir():
        pytest.skip(f"example catalogue not found at {CATALOG} (../shared/data/catalog); benchmark not run")
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1]))  # benchmarks/ is not installed
    from benchmarks.catalogue import run

    result = run(CATALOG, seed=0, variants=2, styles=("ocr",), splits=("test",))
    test = result["ocr"]["test"]
    assert test["names_in_catalogue"] > 2000
    assert test["top1_accuracy"] >= 0.95, test
    assert result["matches_per_s"] > 500

"""The bureau's hospital register: a claim's hospital matched to it, with the code and level; never a confident
wrong hospital."""

from __future__ import annotations

import random

import pytest

from claims.catalogue import Catalogue, ColumnMap
from claims.hospitals import Hospital, HospitalRegister, apply_register, normal, parse_level
from claims.restrictions import match_claim
from core.records import BillField, Claim, DocumentType, LineItem
from ocr.synth.lexicon import words

REGISTER_CSV = """机构编码,机构名称,医院等级,别名
H52001,贵州省人民医院,三级甲等,
H52002,贵州省肿瘤医院,三级甲等,
H52003,遵义医科大学附属医院,三级甲等,遵医附院
H41001,郑州大学第一附属医院,三级甲等,
H41002,郑州大学第二附属医院,三级甲等,
H35001,福建省肿瘤医院,三级甲等,
H41900,郑州市金水区社区卫生服务中心,一级,
"""


@pytest.fixture
def register(tmp_path) -> HospitalRegister:
    path = tmp_path / "register.csv"
    path.write_text(REGISTER_CSV, encoding="utf-8-sig")
    return HospitalRegister.from_csv(path)


def claim_from(hospital: str, items: tuple[LineItem, ...] = ()) -> Claim:
    return Claim(doc_id="d", doc_type=DocumentType.inpatient_e_receipt, items=items,
                 header={"hospital": BillField(name="hospital", value=hospital, raw=hospital, confidence=0.8)})


def test_the_register_is_read_by_its_header_words(register, tmp_path):
    assert len(register) == 7
    h = register.match("遵医附院").hospital
    assert (h.code, h.name, h.level) == ("H52003", "遵义医科大学附属医院", 3)
    assert [parse_level(x) for x in ("三级甲等", "二级", "1", "未定级", "")] == [3, 2, 1, None, None]
    bad = tmp_path / "bad.csv"
    bad.write_text("名字,地址\n贵州省人民医院,贵阳\n", encoding="utf-8")
    with pytest.raises(ValueError, match="code column and a name column"):
        HospitalRegister.from_csv(bad)


def test_exact_names_are_taken_in_any_glyphs_and_brackets(register):
    m = register.match("鄭州大學第一附屬醫院")  # traditional glyphs, as the recogniser sometimes reads them
    assert m is not None and m.hospital.code == "H41001" and m.score == 100
    assert register.match("（贵州省人民医院）").hospital.code == "H52001"


def test_a_damaged_reading_is_matched_but_left_for_review(register):
    out = apply_register(claim_from("遵义医大附医院"), register)  # three characters lost under a stamp
    f = out.header["hospital"]
    assert f.value == "遵义医科大学附属医院" and f.raw == "遵义医大附医院" and f.needs_review
    assert "register H52003: similarity" in f.note
    assert out.header["hospital_code"].value == "H52003" and out.header["hospital_level"].value == "3"
    exact = apply_register(claim_from("贵州省人民医院"), register)
    assert not exact.header["hospital"].needs_review and "exactly" in exact.header["hospital"].note


def test_a_reading_between_two_hospitals_is_not_guessed(register):
    # 贵州省医院 is as close to 贵州省人民医院 as to 贵州省肿瘤医院; 郑州大学第附属医院 lost the 一 or 二
    for reading in ("贵州省医院", "郑州大学第附属医院"):
        out = apply_register(claim_from(reading), register)
        assert out.header["hospital"].value == reading and out.header["hospital"].needs_review
        assert "hospital_code" not in out.header
        assert [f.rule for f in out.findings] == ["hospital.not_in_register"]


def test_the_registers_level_decides_a_level_restriction(register):
    catalogue = Catalogue.from_rows([{"编码": "X1", "名称": "心脏彩超", "等级": "限二级及以上医疗机构"}],
                                    ColumnMap(code="编码", name="名称", restrictions={"level": "等级"}))
    item = (LineItem(line_no=1, name=BillField(name="name", value="心脏彩超"),
                     amount=BillField(name="amount", value="200.00", kind="amount")),)
    unknown = match_claim(claim_from("某县医院", item), catalogue)
    assert [f.severity for f in unknown.findings if f.rule.startswith("restriction")] == ["info"]
    community = match_claim(apply_register(claim_from("郑州市金水区社区卫生服务中心", item), register), catalogue)
    assert [f.severity for f in community.findings if f.rule.startswith("restriction")] == ["error"]
    tertiary = match_claim(apply_register(claim_from("郑州大学第一附属医院", item), register), catalogue)
    assert not [f for f in tertiary.findings if f.rule.startswith("restriction")]


# Seeded property on a generated register of 1,890 names in families one or two characters apart (every place of
# ocr.synth × every kind of hospital): damaged readings are matched right or not at all, and a hospital the
# register lacks is rarely matched to another; every fuzzy match is left for review either way.
_COMMON = "的一是不了人我在有他这中大来上个国到说们为子和你地出道也时年得就那要下以生会自着去之过家学对可里后小么心多天而能好"


def _damage(r: random.Random, name: str) -> str:
    s = list(name)
    for _ in range(r.choice((1, 1, 2, 2, 3))):
        i = r.randrange(len(s))
        if r.random() < 0.5 and len(s) > 3:
            del s[i]
        else:
            s[i] = r.choice(_COMMON)
    return "".join(s)


@pytest.mark.slow
def test_damaged_readings_on_a_dense_register_are_matched_right_or_not_at_all():
    names = sorted({p + k for p in words("places") for k in words("hospital_types")})
    full = HospitalRegister(Hospital(f"H{i:05d}", n) for i, n in enumerate(names))
    r = random.Random(11)
    right = wrong = absent_matched = absent = present = 0
    for t in range(1200):
        j = r.randrange(len(names))
        reading = _damage(r, names[j])
        if normal(reading) in {normal(n) for n in names} - {normal(names[j])}:
            continue  # the damage spelled another hospital of the register: no matcher can tell
        if t % 4 == 0:  # the bill's hospital is not in the register
            absent += 1
            lacking = HospitalRegister(h for h in full.hospitals if h.name != names[j])
            absent_matched += lacking.match(reading) is not None
            continue
        present += 1
        m = full.match(reading)
        right += m is not None and m.hospital.name == names[j]
        wrong += m is not None and m.hospital.name != names[j]
    print(f"register of {len(full)}: {right / present:.3f} matched right, {wrong / present:.4f} wrong; "
          f"{absent_matched / absent:.3f} of absent hospitals matched to another")
    assert right / present > 0.15 and wrong / present <= 0.005 and absent_matched / absent <= 0.04


def test_a_clerks_hospital_is_looked_up_as_typed_and_the_restrictions_follow(register):
    from claims.bureau import after_correction
    from claims.checks import set_field

    catalogue = Catalogue.from_rows([{"编码": "X1", "名称": "心脏彩超", "等级": "限二级及以上医疗机构"}],
                                    ColumnMap(code="编码", name="名称", restrictions={"level": "等级"}))
    item = (LineItem(line_no=1, name=BillField(name="name", value="心脏彩超"),
                     amount=BillField(name="amount", value="200.00", kind="amount")),)
    read = match_claim(apply_register(claim_from("郑州大学第一附属医院", item), register), catalogue)
    assert read.header["hospital_code"].value == "H41001"

    def corrected(name: str):
        typed = BillField(name="hospital", value=name, confidence=1.0, note="corrected by clerk")
        return after_correction(set_field(read, "header.hospital", typed), ["header.hospital"], catalogue, register)

    community = corrected("郑州市金水区社区卫生服务中心")  # the clerk names a level-1 hospital of the register
    assert community.header["hospital_code"].value == "H41900" and community.header["hospital_level"].value == "1"
    assert [f.severity for f in community.findings if f.rule == "restriction.level"] == ["error"]
    # a name the register lacks, or lacks exactly: kept as typed, never snapped; no stale code; the finding says so
    for name in ("某某县人民医院", "郑州大学第一附属医"):
        out = corrected(name)
        assert out.header["hospital"].value == name and not out.header["hospital"].needs_review
        assert "hospital_code" not in out.header and "hospital_level" not in out.header
        assert [f.rule for f in out.findings if f.rule.startswith("hospital.")] == ["hospital.not_in_register"]
        assert [f.severity for f in out.findings if f.rule == "restriction.level"] == ["info"]  # level unknown again

"""Assertion rules (ner.assertions) on hand-written sentences, and P/R on our labels of Yidu-S4K training sentences
(the sentences read from ../shared/data; those tests skip without it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.records import Assertion, Entity, EntityType, Span
from ner.assertions import YIDU_DIR, assign, evaluate, load_labels, sentence_of

T = EntityType
LABELS = Path(__file__).parent / "fixtures" / "assertion_labels.jsonl"
needs_yidu = pytest.mark.skipif(not YIDU_DIR.is_dir(), reason=f"Yidu-S4K not found at {YIDU_DIR} (../shared/data)")


def mentions(text: str, *items: tuple[str, EntityType]) -> list[Entity]:
    """Entities for the given words, each found after the previous one (so repeated words work)."""
    out, at = [], 0
    for word, typ in items:
        i = text.index(word, at)
        out.append(Entity(span=Span(start=i, end=i + len(word), text=word), type=typ))
        at = i + len(word)
    return out


def statuses(text: str, *items: tuple[str, EntityType]) -> list[str]:
    return [e.assertion.value for e in assign(text, mentions(text, *items))]


D, S, B = T.disease, T.symptom, T.body_part


def test_empty_inputs():
    assert assign("", []) == []
    assert assign("无发热。", []) == []


def test_no_cue_is_affirmed_and_order_and_fields_kept():
    text = "患者因直肠癌行直肠癌根治术，术后予奥沙利铂化疗。"
    ents = mentions(text, ("直肠癌", D), ("直肠癌根治术", T.procedure), ("奥沙利铂", T.drug))
    out = assign(text, ents)
    assert [e.assertion for e in out] == [Assertion.affirmed] * 3
    assert [e.model_copy(update={"assertion": Assertion.affirmed}) for e in out] == ents


def test_negation_list_and_clause_boundary():
    assert statuses("无发热、咳嗽、咳痰，伴腹痛。", ("发热", S), ("咳嗽", S), ("咳痰", S), ("腹痛", S)) == [
        "negated", "negated", "negated", "affirmed"]
    # the comma ends the scope; so does the sentence
    assert statuses("无发热，咳嗽明显。胸痛。", ("发热", S), ("咳嗽", S), ("胸痛", S)) == [
        "negated", "affirmed", "affirmed"]
    # a terminator word ends it too
    assert statuses("未见明显肿块但有胸腔积液", ("肿块", D), ("胸腔积液", D)) == ["negated", "affirmed"]


def test_a_bare_wei_denies_only_the_entity_right_after_it():
    assert statuses("头痛，恶心，未呕吐，腹痛。", ("头痛", S), ("恶心", S), ("呕吐", S), ("腹痛", S)) == [
        "affirmed", "affirmed", "negated", "affirmed"]
    assert statuses("恶心未呕吐无意识障碍。", ("恶心", S), ("呕吐", S), ("意识障碍", S)) == [
        "affirmed", "negated", "negated"]
    # 未 before other words is no denial of what follows them
    assert statuses("患者未婚，未明显缓解，腹痛。", ("腹痛", S)) == ["affirmed"]
    assert statuses("咳嗽未明显好转。", ("咳嗽", S)) == ["affirmed"]


@pytest.mark.parametrize("text, word", [
    ("否认高血压、糖尿病病史。", "糖尿病"),
    ("双肺未闻及干湿性啰音。", "干湿性啰音"),
    ("腹部未触及包块。", "包块"),
    ("不伴恶心、呕吐。", "呕吐"),
    ("FISH检测排除滑膜肉瘤。", "滑膜肉瘤"),
    ("目前暂不考虑肺结核。", "肺结核"),
])
def test_negation_triggers(text, word):
    assert statuses(text, (word, D)) == ["negated"]


def test_pseudo_triggers_deny_nothing():
    assert statuses("无明显诱因出现腹痛、腹胀。", ("腹痛", S), ("腹胀", S)) == ["affirmed", "affirmed"]
    assert statuses("行无痛胃镜检查示慢性胃炎。", ("无痛胃镜", T.exam), ("慢性胃炎", D)) == ["affirmed", "affirmed"]
    assert statuses("结合病史，考虑转移瘤。", ("转移瘤", D)) == ["possible"]


def test_possible_and_not_excluded_vs_excluded():
    assert statuses("考虑肺炎。", ("肺炎", D)) == ["possible"]
    assert statuses("胰腺占位：胰腺癌？2.慢性胃炎。", ("胰腺癌", D), ("慢性胃炎", D)) == ["possible", "affirmed"]
    assert statuses("疑似胃癌。", ("胃癌", D)) == ["possible"]
    assert statuses("胆管癌可能性大。", ("胆管癌", D)) == ["possible"]
    assert statuses("不除外淋巴瘤，排除结核。", ("淋巴瘤", D), ("结核", D)) == ["possible", "negated"]
    assert statuses("恶性病变不除外。", ("恶性病变", D)) == ["possible"]
    assert statuses("肺结核待排。", ("肺结核", D)) == ["possible"]


def test_hedge_inside_an_entity_span():
    # Yidu tags the hedge with the finding; punctuation inside a span ends no scope
    assert statuses("胃镜示：贲门肿瘤可能？活检示贲门腺癌。", ("贲门肿瘤可能？", D), ("贲门腺癌", D)) == [
        "possible", "affirmed"]
    assert statuses("CT示肝左叶结节，考虑转移瘤。", ("肝左叶结节，考虑转移瘤", D)) == ["affirmed"]


def test_historical():
    assert statuses("既往有高血压病史，规律服药。", ("高血压", D)) == ["historical"]
    assert statuses("冠心病史10余年。", ("冠心病", D)) == ["historical"]
    assert statuses("有“高血压、糖尿病”病史。", ("高血压", D), ("糖尿病", D)) == ["historical", "historical"]
    # a dated event of the present illness is not "history"
    assert statuses("3月前因直肠癌行手术。", ("直肠癌", D)) == ["affirmed"]


def test_family():
    assert statuses("父亲有糖尿病。", ("糖尿病", D)) == ["family"]
    assert statuses("家族史：母亲患高血压，父亲患糖尿病。", ("高血压", D), ("糖尿病", D)) == ["family", "family"]
    assert statuses("母亲患高血压，患者否认糖尿病。", ("高血压", D), ("糖尿病", D)) == ["family", "negated"]
    assert statuses("患者有糖尿病，否认高血压家族史。", ("糖尿病", D), ("高血压", D)) == ["affirmed", "family"]
    # 家族性 names the patient's own disease; 母细胞 is a cell, not a mother
    assert statuses("因家族性结肠息肉病行全结肠切除术。", ("结肠息肉", D)) == ["affirmed"]
    assert statuses("术后病理确诊肝母细胞瘤。", ("肝母细胞瘤", D)) == ["affirmed"]


def test_precedence():
    # negated beats historical; possible beats historical; family beats negated
    assert statuses("否认冠心病病史。", ("冠心病", D)) == ["negated"]
    assert statuses("既往疑似肺结核。", ("肺结核", D)) == ["possible"]
    assert statuses("否认父亲有高血压。", ("高血压", D)) == ["family"]


def test_result_words_after_tests_are_results():
    # 阴性 after a lab test is its result (the test was done); after a disease it denies the disease
    assert statuses("乙肝阴性，CEA阴性，HP（-）。", ("乙肝", D), ("CEA", T.lab_test), ("HP", T.lab_test)) == [
        "negated", "affirmed", "affirmed"]
    assert statuses("胸部CT未见明显异常。", ("胸部CT", T.exam)) == ["affirmed"]
    assert statuses("未行胃镜检查。", ("胃镜", T.exam)) == ["negated"]


def test_body_part_subject_of_a_denied_finding():
    text = "术中见腹腔内无腹水，胃壁、十二指肠及胰腺均未见癌侵犯，肝脏质地正常。"
    got = statuses(text, ("腹腔", B), ("胃壁", B), ("十二指肠", B), ("胰腺", B), ("肝脏", B))
    assert got == ["negated", "negated", "negated", "negated", "affirmed"]
    assert statuses("腹痛无腹胀。", ("腹", B), ("腹", B)) == ["affirmed", "negated"]
    assert statuses("幽门下淋巴结0/5个，小弯淋巴结3/9个。", ("幽门下淋巴结", B), ("小弯淋巴结", B)) == [
        "negated", "affirmed"]
    assert statuses("左侧甲状腺可疑结节影。", ("左侧甲状腺", B)) == ["possible"]


def test_ascii_full_stop_ends_a_sentence_but_decimal_point_does_not():
    assert statuses("建议排除病毒性损伤. 予联苯双酯保肝。", ("病毒性损伤", D), ("联苯双酯", T.drug)) == [
        "negated", "affirmed"]
    assert statuses("无3.5CM肿块。", ("肿块", D)) == ["negated"]


def test_sentence_of():
    text = "无发热。考虑肺炎；既往体健"
    assert sentence_of(text, 1) == (0, 4)
    assert sentence_of(text, 5) == (4, 9)
    assert sentence_of(text, len(text) - 1) == (9, len(text))


def test_evaluate_counts():
    examples = [{"sentence": "无发热，考虑肺炎。", "entities": [
        {"start": 1, "end": 3, "text": "发热", "type": "Symptom", "assertion": "negated"},
        {"start": 6, "end": 8, "text": "肺炎", "type": "疾病和诊断", "assertion": "affirmed"},
    ]}]
    r = evaluate(examples)
    assert (r["sentences"], r["entities"], r["accuracy"]) == (1, 2, 0.5)
    assert r["classes"]["negated"] == {"support": 1, "predicted": 1, "precision": 1.0, "recall": 1.0, "f1": 1.0}
    assert r["classes"]["possible"]["precision"] == 0.0 and r["classes"]["possible"]["recall"] is None
    assert r["classes"]["affirmed"]["recall"] == 0.0 and r["classes"]["affirmed"]["precision"] is None
    assert r["errors"][0]["entity"] == "肺炎"


@needs_yidu
def test_fixture_is_well_formed():
    examples = load_labels(LABELS)
    assert len(examples) >= 200
    labels = {"疾病和诊断", "手术", "解剖部位", "药物", "影像检查", "实验室检验"}
    for ex in examples:
        assert ex["source"].startswith(("part1:", "part2:"))
        for g in ex["entities"]:
            assert ex["sentence"][g["start"]:g["end"]] == g["text"]
            assert g["type"] in labels and g["assertion"] in {a.value for a in Assertion}
    negated = sum(g["assertion"] == "negated" for ex in examples for g in ex["entities"])
    assert negated >= 60


@needs_yidu
def test_negation_precision_recall_on_annotated_yidu():
    r = evaluate(load_labels(LABELS))
    neg = r["classes"]["negated"]
    assert neg["precision"] >= 0.9 and neg["recall"] >= 0.9, neg

"""Relation extraction: data and split (pure), the network's pieces, a short real training run, then the shipped
model on real text: triples, bounds, the stage with NER and attribute rules, the CLI."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from relations.data import Example, load_cmeie, load_schemas, occurrences, part
from relations.model import NEG, allowed_matrix, gap, multilabel_ce, rotary
from relations.train import scores

ROOT = Path(__file__).resolve().parents[1]
CMEIE = ROOT.parent / "shared" / "data" / "re" / "cmeie"
SHIPPED = ROOT / "models" / "relations"

# hand-written lines in CMeIE's format (object and object_type as {"@value": ...})
LINES = [
    {"text": "糖尿病@2型糖尿病患者常见多饮、多尿，可用二甲双胍治疗。",
     "spo_list": [
         {"subject": "2型糖尿病", "subject_type": "疾病", "predicate": "临床表现", "object": {"@value": "多饮"},
          "object_type": {"@value": "症状"}},
         {"subject": "2型糖尿病", "subject_type": "疾病", "predicate": "临床表现", "object": {"@value": "多尿"},
          "object_type": {"@value": "症状"}},
         {"subject": "2型糖尿病", "subject_type": "疾病", "predicate": "药物治疗", "object": {"@value": "二甲双胍"},
          "object_type": {"@value": "药物"}},
         {"subject": "2型糖尿病", "subject_type": "疾病", "predicate": "药物治疗", "object": {"@value": "胰岛素"},
          "object_type": {"@value": "药物"}}]},  # 胰岛素 is not in the text: dropped
    {"text": "肺炎@肺炎的病因多为肺炎链球菌感染，胸部X线可见片状阴影。",
     "spo_list": [
         {"subject": "肺炎", "subject_type": "疾病", "predicate": "病因", "object": {"@value": "肺炎链球菌感染"},
          "object_type": {"@value": "社会学"}},
         {"subject": "肺炎", "subject_type": "疾病", "predicate": "影像学检查", "object": {"@value": "胸部X线"},
          "object_type": {"@value": "检查"}}]},
    {"text": "无关文本，没有任何三元组。", "spo_list": []},
]
SCHEMAS = [("疾病", "临床表现", "症状"), ("疾病", "药物治疗", "药物"), ("疾病", "病因", "社会学"),
           ("疾病", "影像学检查", "检查"), ("疾病", "同义词", "疾病")]


@pytest.fixture
def cmeie_file(tmp_path) -> Path:
    p = tmp_path / "cmeie.json"
    p.write_text("\n".join(json.dumps(x, ensure_ascii=False) for x in LINES) + "\n", encoding="utf-8")
    return p


# ------------------------------------------------------------------------------------------ data
def test_cmeie_lines_become_entities_and_triples_by_string(cmeie_file):
    exs = load_cmeie(cmeie_file)
    assert [len(e.triples) for e in exs] == [3, 2, 0]
    first = exs[0]
    assert first.gold() == {("2型糖尿病", "临床表现", "多饮"), ("2型糖尿病", "临床表现", "多尿"),
                            ("2型糖尿病", "药物治疗", "二甲双胍")}
    assert ("胰岛素", "药物") not in first.entities  # a string absent from the text is not an entity
    # "肺炎" occurs three times (once inside 肺炎链球菌): every occurrence is a mention
    assert occurrences(exs[1].text, "肺炎") == [(0, 2), (3, 5), (10, 12)]
    assert occurrences("aaa", "aa") == [(0, 2), (1, 3)] and occurrences("abc", "") == []


def test_split_is_the_fixed_md5_rule():
    for text in ("肺炎", "糖尿病@多饮", "x" * 50, "高血压病"):
        digit = hashlib.md5(text.encode("utf-8")).hexdigest()[0]
        assert part(text) == ("test" if digit in "cdef" else "tune" if digit == "b" else "train")


@pytest.mark.skipif(not (CMEIE / "CMeIE_dev.json").is_file(), reason="CMeIE not present (../shared/data)")
def test_split_sizes_on_cmeie_match_the_data_readme():
    exs = load_cmeie(CMEIE / "CMeIE_dev.json")
    test = [e for e in exs if part(e.text) == "test"]
    assert (len(test), len(exs) - len(test)) == (928, 2657)
    assert len(load_schemas(CMEIE / "53_schemas.json")) == 53
    # every triple's strings were found: nothing silently lost by the loader
    assert sum(len(e.triples) for e in exs) == 10626 - _duplicate_triples(CMEIE / "CMeIE_dev.json")


def _duplicate_triples(path: Path) -> int:
    n = 0
    for line in path.read_text(encoding="utf-8").splitlines():
        spo = json.loads(line)["spo_list"]
        keys = [(s["subject"], s["subject_type"], s["predicate"], s["object"]["@value"], s["object_type"]["@value"])
                for s in spo]
        n += len(keys) - len(set(keys))
    return n


def test_scores_count_exact_string_triples():
    pred = [{("a", "p", "b"), ("a", "q", "c")}, set()]
    gold = [{("a", "p", "b")}, {("x", "p", "y")}]
    got = scores(pred, gold)
    assert got["micro"] == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "tp": 1, "fp": 1, "fn": 1}
    assert got["per_predicate"]["p"]["support"] == 2 and got["per_predicate"]["q"]["fp"] == 1


# ------------------------------------------------------------------------------------------ network pieces
@settings(max_examples=30, deadline=None)
@given(st.integers(0, 20), st.integers(0, 20), st.integers(1, 10))
def test_rotary_scores_depend_only_on_the_offset(i, j, shift):
    torch.manual_seed(0)
    q, k = torch.randn(1, 40, 16), torch.randn(1, 40, 16)
    q[:, :] = q[:, :1]  # the same query and key vector at every position
    k[:, :] = k[:, :1]
    rq, rk = rotary(q), rotary(k)
    a = (rq[0, i] * rk[0, j]).sum()
    b = (rq[0, i + shift] * rk[0, j + shift]).sum()
    assert torch.allclose(a, b, atol=1e-4)


def test_multilabel_loss_rewards_positives_above_zero_and_negatives_below():
    labels = torch.tensor([[1.0, 0.0, 0.0]])
    good = multilabel_ce(torch.tensor([[8.0, -8.0, NEG]]), labels)
    bad = multilabel_ce(torch.tensor([[-8.0, 8.0, NEG]]), labels)
    assert good < 0.01 and bad > 10
    empty = multilabel_ce(torch.tensor([[-8.0, -8.0, NEG]]), torch.zeros(1, 3))  # a row with no positive
    assert empty < 0.01


def test_disallowed_type_pairs_have_no_predicate():
    types, preds = ["疾病", "症状", "药物"], ["临床表现", "药物治疗"]
    a = allowed_matrix(types, preds, [("疾病", "临床表现", "症状"), ("疾病", "药物治疗", "药物")])
    assert a[0, 1].tolist() == [True, False] and a[0, 2].tolist() == [False, True]
    assert not a[1, 0].any() and not a[2, 2].any()  # symptom -> disease, drug -> drug: never a candidate


def test_gap_is_between_the_closest_mentions_in_either_order():
    subject, near = [(1, 2)], [(6, 7), (40, 41)]
    assert gap(subject, near) == gap(near, subject) == (3, 6)  # the closest mention, not the first
    assert gap([(5, 9)], [(7, 8)]) == (10, 10)  # overlapping mentions: nothing between


# ------------------------------------------------------------------------------------------ training (real, tiny)
def test_training_runs_saves_a_loadable_model_and_refuses_test_texts(cmeie_file, tmp_path):
    from relations.data import Schema
    from relations.model import load
    from relations.train import TrainConfig, train

    base = load_cmeie(cmeie_file)
    exs = [Example(f"{i}{e.text}", e.entities, e.triples) for i in range(40) for e in base[:2]]
    train_part = [e for e in exs if part(e.text) == "train"][:6]
    tune = [e for e in exs if part(e.text) == "tune"][:2]
    schemas = [Schema(*s) for s in SCHEMAS]
    cfg = TrainConfig(epochs=1, max_tokens=256, eval_every=1000, threads=1, ema=0.9)  # the stored: the average
    out = tmp_path / "re-tiny"
    meta = train(ROOT / "models" / "ner", train_part + tune, schemas, out, cfg, log=lambda d: None)
    assert meta["steps"] >= 1 and meta["examples"] == {"train": len(train_part), "tune": len(tune)}
    net, _, saved = load(out)
    assert net.predicates == sorted({s[1] for s in SCHEMAS}) and saved["schemas"]
    test_text = next(e for e in exs if part(e.text) == "test")
    with pytest.raises(ValueError, match="test part"):
        train(ROOT / "models" / "ner", [test_text], schemas, tmp_path / "no", cfg, log=lambda d: None)


# ------------------------------------------------------------------------------------------ the shipped model
@pytest.fixture(scope="module")
def extractor():
    from relations.extract import RelationExtractor

    return RelationExtractor.load(SHIPPED, threads=1)


def _types_allowed(extractor, triples) -> bool:
    schemas = {tuple(s) for s in extractor.meta["schemas"]}
    return all((t.subject.type, t.predicate, t.object.type) in schemas for t in triples)


def test_textbook_sentences_give_their_triples(extractor):
    texts = ["糖尿病@2型糖尿病的典型症状为多饮、多尿、多食和体重减轻。",
             "胃溃疡@胃溃疡的治疗药物有奥美拉唑、雷贝拉唑等质子泵抑制剂。",
             "肺结核@肺结核患者常有咳嗽、咳痰、低热、盗汗，治疗用异烟肼、利福平。"]
    got = extractor.triples(texts)
    keys = [{t.key for t in triples} for _, triples, _ in got]
    assert {("2型糖尿病", "临床表现", "多饮"), ("2型糖尿病", "临床表现", "多尿")} <= keys[0], keys[0]
    assert ("胃溃疡", "药物治疗", "奥美拉唑") in keys[1], keys[1]
    assert any(p == "临床表现" and o in {"咳嗽", "盗汗", "低热"} for _, p, o in keys[2]), keys[2]
    assert any(p == "药物治疗" and o in {"异烟肼", "利福平"} for _, p, o in keys[2]), keys[2]
    # no argument crosses CMeIE's "topic@" prefix or a sentence end
    assert not any("@" in s or "@" in o for k in keys for s, _, o in k)
    for _, triples, _ in got:
        assert _types_allowed(extractor, triples)


def test_records_carry_exact_offsets_evidence_and_both_labels(extractor):
    text = "肺炎@社区获得性肺炎常见发热、咳嗽。可予阿莫西林口服治疗。"
    [ex] = extractor([text])
    assert ex.relations and ex.truncated == 0
    for r in ex.relations:
        for span in (r.subject.span, r.object.span, r.evidence):
            assert text[span.start:span.end] == span.text
        assert r.evidence.start <= min(r.subject.span.start, r.object.span.start)
        assert r.evidence.end >= max(r.subject.span.end, r.object.span.end)
        assert r.label and r.predicate.isupper() and 0 < r.confidence <= 1 and r.model.startswith(extractor.meta["name"])


@pytest.mark.parametrize("text", ["", "   ", "。。。！？", "今天天气很好，我们去公园散步。", "🙂🙂🙂 abc 123"])
def test_texts_without_entities_give_nothing_and_no_error(extractor, text):
    [ex] = extractor([text])
    assert ex.relations == [] and all(text[e.span.start:e.span.end] == e.span.text for e in ex.entities)


def test_type_pairs_no_schema_allows_are_never_related(extractor):
    # body parts and drugs only: no schema relates 部位 to 部位, 药物 to 部位 or 药物 to 药物
    [(_, triples, _)] = extractor.triples(["头部、颈部、胸部、腹部、四肢。阿司匹林、氯吡格雷、阿托伐他汀。"])
    assert _types_allowed(extractor, triples)
    assert not any(t.subject.type in ("部位", "药物") for t in triples)


def test_hundreds_of_entities_stay_within_the_pair_bound():
    from relations.extract import RelationExtractor

    small = RelationExtractor.load(SHIPPED, threads=1, max_entities=6)
    drugs = ["阿莫西林", "头孢曲松", "左氧氟沙星", "阿奇霉素", "甲硝唑", "万古霉素", "利奈唑胺", "美罗培南", "亚胺培南",
             "克林霉素", "多西环素", "米诺环素", "替加环素", "哌拉西林", "氨曲南", "磷霉素"]
    one_window = "肺炎@肺炎可用" + "、".join(drugs) + "治疗，常见发热、咳嗽、咳痰、胸痛、气促。"
    [(args, triples, dropped)] = small.triples([one_window])
    assert len(one_window) <= 300 and len(args) <= 6 and dropped > 0
    assert len(triples) <= 6 * 5
    long = "。".join([one_window] * 40)  # ~3,500 characters, ~800 mentions: window by window, each bounded
    [(args, triples, dropped)] = small.triples([long])
    assert dropped > 0 and len(triples) <= 6 * 5 * 20


def test_the_stage_unifies_ner_entities_and_adds_attribute_links():
    from ner.tagger import Tagger
    from relations.extract import RelationExtractor
    from relations.stage import RelationStage

    stage = RelationStage(Tagger.load(), RelationExtractor.load(SHIPPED, threads=1))
    text = "诊断：社区获得性肺炎。患者咳嗽、发热，予阿莫西林0.5g tid口服。血白细胞12.6×10^9/L↑。"
    [(entities, relations)] = stage([text])
    spans = [(e.span.start, e.span.end) for e in entities]
    assert len(spans) == len(set(spans))  # one entity per span: triple arguments are the NER entities
    ids = {id(e) for e in entities}
    for r in relations:
        assert id(r.subject) in ids and (not hasattr(r.object, "type") or id(r.object) in ids)
    preds = {r.predicate for r in relations}
    assert {"HAS_DOSE", "HAS_FREQUENCY", "HAS_ROUTE"} <= preds, preds


def test_cli_extract_reads_standard_input_and_prints_json():
    medkg = str(Path(sys.executable).with_name("medkg"))
    text = "高血压@高血压患者可出现头痛、头晕，治疗可用硝苯地平10mg bid口服。"
    proc = subprocess.run([medkg, "relations", "extract", "-"], input=text.encode("utf-8"), capture_output=True,
                          cwd=ROOT, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr.decode()
    out = json.loads(proc.stdout)
    assert out["chars"] == len(text) and out["entities"] and out["relations"]
    for r in out["relations"]:
        s = r["subject"]["span"]
        assert text[s["start"]:s["end"]] == s["text"]
    bad = subprocess.run([medkg, "relations", "extract", "-"], input=b"\xff\xfe\xfa", capture_output=True, cwd=ROOT,
                         timeout=600, check=False)
    assert bad.returncode == 2 and b"invalid UTF-8" in bad.stderr

"""CCKS 2017 and official CMeEE in training and evaluation (issue 22): the loader and its fixed split, the ccks17
type mapping, eval's per-type report, type confusions and negated-symptom scores; then the real data, which skips
with a clear message where ../shared/data is absent."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.ner import ner_app
from core.records import Entity, EntityType, Span
from ner.data import (
    DataFormatError,
    assertion_gold,
    ccks17_part,
    ccks17_record,
    load,
    load_assertion_fixture,
    outer_and_inner,
    sniff,
    text_sha256,
)
from ner.metrics import assertion_scores, confusions, strict_scores
from ner.schema import entity_type, scheme_label
from ner.train import evaluate, predict

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data" / "ner"
CCKS = SHARED / "ccks2017"
FIXTURE = ROOT / "tests" / "fixtures" / "negation_labels.jsonl"
BASELINE = ROOT / "benchmarks" / "results" / "ner_report_emr_baseline.json"
SYM = "症状和体征"


def write_record(root: Path, section: str, n: int, text: str, ann: list[tuple[str, int, int, str]]) -> None:
    d = root / section
    d.mkdir(parents=True, exist_ok=True)
    (d / f"{section}-{n}.txtoriginal.txt").write_bytes(text.encode("utf-8"))
    (d / f"{section}-{n}.txt").write_bytes("".join(f"{e}\t{s}\t{t}\t{lab}\r\n" for e, s, t, lab in ann).encode("utf-8"))


@pytest.fixture
def ccks_dir(tmp_path):
    """Hand-made files in the CCKS 2017 format: CRLF texts and annotation lines, ends inclusive."""
    text1 = "患者无发热，\r\n查体：腹部压痛。\r\n"
    write_record(tmp_path, "病史特点", 1, text1, [("发热", 3, 4, SYM), ("腹部", 11, 12, "身体部位"),
                                               ("压痛", 13, 14, "检查和检验")])
    text5 = "给予头孢治疗，诊断肺炎。"
    write_record(tmp_path, "病史特点", 5, text5, [("头孢", 2, 3, "治疗"), ("肺炎", 9, 10, "疾病和诊断")])
    write_record(tmp_path, "出院情况", 10, "无咳嗽。", [("咳嗽", 1, 2, SYM)])
    write_record(tmp_path, "出院情况", 11, "咳嗽好转。", [("咳嗽", 0, 1, SYM), ("好转", 2, 3, "预后")])
    return tmp_path


# ------------------------------------------------------------------------------------------ loader and split
def test_split_rule_is_record_number_mod_5():
    assert [ccks17_part(f"病史特点-{n}.txt") for n in (1, 4, 5, 10, 11, 300)] == \
        ["train", "train", "test", "test", "train", "test"]
    assert ccks17_record("x/一般项目/一般项目-25.txtoriginal.txt") == 25
    with pytest.raises(DataFormatError):
        ccks17_record("notes.txt")


def test_loader_reads_inclusive_ends_over_the_raw_text_and_honours_the_split(ccks_dir):
    assert sniff(ccks_dir) == "ccks17"
    every = {e.source: e for e in load(ccks_dir)}
    assert sorted(every) == ["出院情况/出院情况-10.txtoriginal.txt", "出院情况/出院情况-11.txtoriginal.txt",
                             "病史特点/病史特点-1.txtoriginal.txt", "病史特点/病史特点-5.txtoriginal.txt"]
    ex = every["病史特点/病史特点-1.txtoriginal.txt"]
    assert "\r\n" in ex.text  # offsets count the CR: read from bytes, not through universal newlines
    assert [(ex.text[s:e], lab) for s, e, lab in ex.spans] == [("发热", SYM), ("腹部", "身体部位"), ("压痛", "检查和检验")]
    assert all(e.scheme == "ccks17" for e in every.values())
    # an unknown type (预后) is dropped, as every loader drops labels outside its scheme
    assert every["出院情况/出院情况-11.txtoriginal.txt"].spans == ((0, 2, SYM),)
    train = {e.source for e in load(ccks_dir, part="train")}
    test = {e.source for e in load(ccks_dir, part="test")}
    assert train == {"病史特点/病史特点-1.txtoriginal.txt", "出院情况/出院情况-11.txtoriginal.txt"}
    assert test == {"病史特点/病史特点-5.txtoriginal.txt", "出院情况/出院情况-10.txtoriginal.txt"}
    # a section directory, or either file of one record
    assert len(load(ccks_dir / "病史特点", part="all")) == 2
    for name in ("病史特点-5.txt", "病史特点-5.txtoriginal.txt"):
        assert sniff(ccks_dir / "病史特点" / name) == "ccks17"
        assert [e.source for e in load(ccks_dir / "病史特点" / name)] == ["病史特点/病史特点-5.txtoriginal.txt"]
    with pytest.raises(DataFormatError):
        load(ccks_dir, part="dev")


def test_an_annotation_that_does_not_match_its_text_is_an_error(tmp_path):
    write_record(tmp_path, "一般项目", 2, "患者男性。", [("男性", 2, 4, "身体部位")])  # end is inclusive: 2..3
    with pytest.raises(DataFormatError, match="not the text"):
        load(tmp_path)


def test_ccks17_types_map_onto_the_graph_schema_and_back():
    assert {lab: entity_type("ccks17", lab) for lab in (SYM, "身体部位", "检查和检验", "治疗", "疾病和诊断")} == {
        SYM: EntityType.symptom, "身体部位": EntityType.body_part, "检查和检验": EntityType.exam,
        "治疗": EntityType.drug, "疾病和诊断": EntityType.disease}
    # a model without a ccks17 head is scored by its graph output: both exam types, drugs and procedures fold in
    assert scheme_label("ccks17", EntityType.exam) == scheme_label("ccks17", EntityType.lab_test) == "检查和检验"
    assert scheme_label("ccks17", EntityType.drug) == scheme_label("ccks17", EntityType.procedure) == "治疗"
    assert scheme_label("ccks17", EntityType.department) is None
    assert scheme_label("yidu", EntityType.symptom) is None


# ------------------------------------------------------------------------------------------ official CMeEE
def test_official_cmeee_trains_outer_spans_keeps_nested_ones_and_drops_broken_entities(tmp_path):
    text = "腹部疼痛伴发热"
    p = tmp_path / "CMeEE_train.json"
    p.write_text(json.dumps([{"text": text, "entities": [
        {"start_idx": 0, "end_idx": 3, "type": "sym", "entity": "腹部疼痛"},
        {"start_idx": 0, "end_idx": 1, "type": "bod", "entity": "腹部"},
        {"start_idx": 5, "end_idx": 6, "type": "sym", "entity": "发热"},
        {"start_idx": 6, "end_idx": 4, "type": "sym", "entity": "broken"},  # end before start (records 6051, 6421)
    ]}], ensure_ascii=False), encoding="utf-8")
    (ex,) = load(p)
    assert ex.spans == ((0, 4, "sym"), (5, 7, "sym"))
    assert ex.inner == ((0, 2, "bod"),)
    assert ex.gold == ((0, 2, "bod"), (0, 4, "sym"), (5, 7, "sym"))
    assert outer_and_inner([(2, 5, "a"), (0, 3, "b"), (0, 1, "c")]) == ([(0, 3, "b")], [(0, 1, "c"), (2, 5, "a")])


# ------------------------------------------------------------------------------------------ eval's report
def test_confusions_count_exact_spans_predicted_with_another_type():
    gold = [(0, 2, SYM), (3, 5, "检查和检验"), (6, 8, "身体部位"), (9, 11, SYM)]
    pred = [(0, 2, "疾病和诊断", 0.9), (3, 5, SYM, 0.8), (6, 8, "身体部位", 1.0), (9, 12, "疾病和诊断", 0.7)]
    rows = confusions([(gold, pred)])
    assert rows == [{"gold": "检查和检验", "pred": SYM, "n": 1}, {"gold": SYM, "pred": "疾病和诊断", "n": 1}]  # ties by name
    scores = strict_scores([(gold, pred)])
    assert scores["confusions"] == rows  # a boundary error (9..11 vs 9..12) is no confusion
    assert scores["micro"] == {"p": 0.25, "r": 0.25, "f1": 0.25, "gold": 4, "pred": 4}
    assert scores["per_type"][SYM] == {"p": 0.0, "r": 0.0, "f1": 0.0, "gold": 2, "pred": 1}
    # the same span with its own type among the predictions is right, whatever else was predicted there
    assert confusions([([(0, 2, SYM)], [(0, 2, SYM), (0, 2, "身体部位")])]) == []


def test_negated_mentions_count_only_with_span_label_and_assertion_right():
    gold = [(0, 2, SYM, "negated"), (3, 5, SYM, "negated"), (6, 8, SYM, "affirmed")]
    pred = [(0, 2, SYM, "negated"), (3, 5, SYM, "affirmed"), (6, 8, SYM, "negated"), (9, 10, "身体部位", "negated")]
    assert assertion_scores([(gold, pred)], SYM, "negated") == {"p": 0.5, "r": 0.5, "f1": 0.5, "gold": 2, "pred": 2,
                                                               "found": 2}


class Stub:
    """The two calls evaluation makes of a tagger, over fixed outputs: a head's spans, or the graph output."""

    def __init__(self, labels: dict, spans: dict | None = None, entities: dict | None = None):
        self.labels, self._spans, self._entities = labels, spans or {}, entities or {}

    def spans(self, texts, scheme, nested=True):
        return [list(self._spans.get(t, [])) for t in texts]

    def __call__(self, texts):
        return [[Entity(span=Span(start=s, end=e, text=t[s:e]), type=typ) for s, e, typ in self._entities.get(t, [])]
                for t in texts]


def test_eval_maps_a_headless_scheme_from_the_graph_output_with_confusions_and_negation(ccks_dir, tmp_path):
    (ex,) = [e for e in load(ccks_dir, part="train") if e.source.endswith("-1.txtoriginal.txt")]
    T = EntityType
    stub = Stub({"yidu": []}, entities={ex.text: [(3, 5, T.symptom), (11, 13, T.body_part), (13, 15, T.symptom),
                                                  (0, 2, T.department)]})
    (got,) = predict(stub, [ex.text], "ccks17", assertions=True)
    assert [(s, e, lab, a) for s, e, lab, _, a in got] == [(3, 5, SYM, "negated"), (11, 13, "身体部位", "affirmed"),
                                                           (13, 15, SYM, "affirmed")]
    fixture = tmp_path / "neg.jsonl"
    fixture.write_text(json.dumps({"file": ex.source, "sha256": text_sha256(ex.text), "label": SYM,
                                   "mentions": [[3, 5, "negated"]]}, ensure_ascii=False) + "\n", encoding="utf-8")
    scores = evaluate(stub, [ex], assertion_fixture=load_assertion_fixture(fixture))["ccks17"]
    assert scores["micro"]["f1"] == round(2 / 3, 4)
    assert scores["confusions"] == [{"gold": "检查和检验", "pred": SYM, "n": 1}]
    assert "mapped_from" in scores
    perfect = {"p": 1.0, "r": 1.0, "f1": 1.0, "gold": 1, "pred": 1, "found": 1}
    assert scores["negated"] == {"label": SYM, "texts": 1, **perfect, "rules_on_gold_spans": perfect}
    # a model with a ccks17 head is scored on it
    head = Stub({"ccks17": []}, spans={ex.text: [(3, 5, SYM, 0.9)]}, entities={ex.text: [(11, 13, T.body_part)]})
    assert evaluate(head, [ex])["ccks17"]["micro"]["p"] == 1.0
    # … or by its graph output, on demand (medkg ner eval --graph)
    merged = evaluate(head, [ex], graph=True)["ccks17"]
    assert merged["per_type"]["身体部位"]["f1"] == 1.0 and merged["mapped_from"].startswith("graph output:")


def test_the_fixture_is_checked_against_the_text_it_annotated(ccks_dir):
    (ex,) = [e for e in load(ccks_dir, part="train") if e.source.endswith("-1.txtoriginal.txt")]
    good = {ex.source: {"file": ex.source, "sha256": text_sha256(ex.text), "label": SYM, "mentions": [[3, 5, "negated"]]}}
    assert assertion_gold(ex, good) == [(3, 5, SYM, "negated")]
    with pytest.raises(DataFormatError, match="differs"):
        assertion_gold(ex, {ex.source: {**good[ex.source], "sha256": "0" * 64}})
    with pytest.raises(DataFormatError, match="not a gold"):
        assertion_gold(ex, {ex.source: {**good[ex.source], "mentions": [[4, 6, "negated"]]}})


def test_training_refuses_the_reporting_part(ccks_dir):
    result = CliRunner().invoke(ner_app, ["train", str(ccks_dir), "--part", "test"])
    assert result.exit_code == 2
    assert "reporting" in result.output


# ------------------------------------------------------------------------------------------ real data
needs_ccks = pytest.mark.skipif(not CCKS.is_dir(), reason=f"CCKS 2017 not found at {CCKS} (../shared/data is absent)")


@needs_ccks
def test_real_ccks17_split_matches_the_data_readme():
    train, test = load(CCKS, part="train"), load(CCKS, part="test")
    assert (len(train), sum(len(e.spans) for e in train)) == (958, 23998)
    assert (len(test), sum(len(e.spans) for e in test)) == (240, 5868)
    assert {e.source for e in train}.isdisjoint({e.source for e in test})


@needs_ccks
def test_negation_fixture_covers_every_symptom_of_its_texts_and_only_test_records():
    fixture = load_assertion_fixture(FIXTURE)
    by_source = {e.source: e for e in load(CCKS / "病史特点", part="test")}
    assert len(fixture) == 20
    counts = {"negated": 0, "affirmed": 0}
    for source in fixture:
        ex = by_source[source]  # a test record: the fixture is reporting-only gold
        got = assertion_gold(ex, fixture)  # the hash and every offset checked
        assert sorted(s[:3] for s in got) == sorted(s for s in ex.spans if s[2] == SYM)
        for *_, status in got:
            counts[status] += 1
    assert counts == {"negated": 215, "affirmed": 117}


@needs_ccks
def test_baseline_result_keeps_its_command_and_the_test_part():
    r = json.loads(BASELINE.read_text(encoding="utf-8"))
    assert r["command"].startswith("medkg ner eval ../shared/data/ner/ccks2017 --part test")
    s = r["scores"]["ccks17"]
    assert r["texts"] == 240 and s["micro"]["gold"] == 5868
    assert s["negated"]["gold"] == 215 and "confusions" in s


@pytest.mark.skipif(not (SHARED / "cmeee" / "CMeEE_train.json").is_file(),
                    reason="official CMeEE training set not found (../shared/data is absent)")
def test_real_official_cmeee_keeps_every_entity_but_the_two_broken_ones():
    exs = load(SHARED / "cmeee" / "CMeEE_train.json")
    assert len(exs) == 15000
    assert sum(len(e.spans) + len(e.inner) for e in exs) == 61796 - 2


# ------------------------------------------------------------------------------------------ training (real, tiny)
def _medkg(*args):
    medkg = str(Path(sys.executable).with_name("medkg"))
    return subprocess.run([medkg, *args], capture_output=True, cwd=ROOT, timeout=300, check=False)


def test_continuing_a_model_adds_a_ccks17_head_and_max_steps_stops_early(tmp_path):
    """A model trained without CCKS 2017 goes on training with a fresh ccks17 head (a CRF like its others); the
    next run's command shape, on tiny data and a tiny random BERT."""
    from transformers import BertConfig, BertModel, BertTokenizer

    from ner.tagger import Tagger

    ccks = tmp_path / "ccks"
    for n in range(1, 41):
        write_record(ccks, "病史特点", n, f"第{n}例，无发热，腹部压痛。", [("发热", 4 + len(str(n)), 5 + len(str(n)), SYM)])
    yidu = tmp_path / "yidu.txt"
    yidu.write_text("\n".join(json.dumps({"originalText": f"{i}例诊断肺炎", "entities": [
        {"label_type": "疾病和诊断", "start_pos": len(str(i)) + 3, "end_pos": len(str(i)) + 5}]}, ensure_ascii=False)
        for i in range(30)), encoding="utf-8")
    chars = sorted(set("第例，无发热腹部压痛。诊断肺炎0123456789"))
    (tmp_path / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *chars]),
                                        encoding="utf-8")
    bert = tmp_path / "bert"
    BertTokenizer(vocab=str(tmp_path / "vocab.txt")).save_pretrained(bert)
    BertModel(BertConfig(vocab_size=len(chars) + 5, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=64)).save_pretrained(bert)
    first, second = tmp_path / "first", tmp_path / "second"
    r = _medkg("ner", "train", str(yidu), "--encoder", str(bert), "--out", str(first), "--epochs", "1",
               "--max-tokens", "512", "--eval-every", "1000", "--crf")
    assert r.returncode == 0, r.stderr.decode()[-2000:]
    r = _medkg("ner", "train", str(yidu), str(ccks), "--encoder", str(first), "--out", str(second), "--epochs", "3",
               "--max-tokens", "256", "--eval-every", "1000", "--max-steps", "2")
    assert r.returncode == 0, r.stderr.decode()[-2000:]
    assert '"new_heads", "schemes": ["ccks17"]' in r.stderr.decode()
    meta = json.loads((second / "ner.json").read_text(encoding="utf-8"))
    assert set(meta["schemes"]) == {"yidu", "ccks17"} and set(meta["transitions"]) == {"yidu", "ccks17"}
    assert meta["train"]["max_steps"] == 2 and meta["train"]["crf"] is True
    assert meta["history"][-1]["step"] == 2 < meta["steps"]
    assert meta["train"]["extra"]["part"] == "train"
    scores = evaluate(Tagger.load(second, backend="torch-fp32"), load(ccks, part="test"))["ccks17"]
    assert "mapped_from" not in scores and scores["micro"]["gold"] == 8  # records 5, 10, …, 40
    # or, in minutes on the real data, a ccks17 head re-fitted alone on the frozen encoder (--heads-only)
    third = tmp_path / "third"
    r = _medkg("ner", "train", str(ccks), "--heads-only", "--encoder", str(first), "--out", str(third))
    assert r.returncode == 0, r.stderr.decode()[-2000:]
    meta = json.loads((third / "ner.json").read_text(encoding="utf-8"))
    assert set(meta["schemes"]) == {"yidu", "ccks17"} and meta["refits"][-1]["schemes"] == ["ccks17"]

"""The spaCy interface (relations.spacy_pipeline): the same entities, assertions and relations as medkg's own stage,
displaCy HTML, and the README's example offline. Real shipped models, nothing mocked."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

spacy = pytest.importorskip("spacy")

from core.records import Entity

ROOT = Path(__file__).resolve().parents[1]
RECORDS = [json.loads(line)["text"] for line in (ROOT / "samples" / "records.jsonl").read_text(encoding="utf-8")
           .splitlines() if line.strip()]

# the README's five lines (kept identical to the section in the README)
README_EXAMPLE = """\
from spacy import displacy
from relations.spacy_pipeline import spacy_pipeline
nlp = spacy_pipeline()  # the shipped NER and relation models; spacy_pipeline(relations=False) for NER only
doc = nlp("主诉：咳嗽3天。否认糖尿病史。诊断：社区获得性肺炎，予头孢曲松抗感染治疗。")
print([(e.text, e.label_, e._.assertion) for e in doc.ents], doc._.relations[:2], displacy.render(doc, style="ent")[:60])
"""


@pytest.fixture(scope="module")
def stage():
    from relations.stage import RelationStage

    return RelationStage.load()


@pytest.fixture(scope="module")
def nlp(stage):
    from relations.spacy_pipeline import spacy_pipeline

    return spacy_pipeline(stage=stage)


def entity_tuples(entities):
    return sorted((e.span.start, e.span.end, e.span.text, e.type.value, e.assertion.value) for e in entities)


def span_tuples(spans):
    return sorted((s.start_char, s.end_char, s.text, s.label_, s._.assertion) for s in spans)


def relation_tuples(relations):
    return sorted((r.subject.span.start, r.subject.span.end, r.subject.type.value, r.subject.assertion.value,
                   r.predicate, r.label, r.object.span.start if isinstance(r.object, Entity) else r.object.start,
                   r.object.span.end if isinstance(r.object, Entity) else r.object.end,
                   r.object.assertion.value if isinstance(r.object, Entity) else None) for r in relations)


def test_a_blank_chinese_pipeline_of_medkgs_components(nlp):
    assert nlp.lang == "zh" and nlp.pipe_names == ["medkg_ner", "medkg_assertions", "medkg_relations"]
    assert nlp.config["nlp"]["tokenizer"]["segmenter"] == "char"  # one token per character, nothing downloaded


def test_the_sample_records_give_the_same_entities_and_relations_as_the_stage(nlp, stage):
    docs = list(nlp.pipe(RECORDS, batch_size=4))
    for text, doc, (entities, relations) in zip(RECORDS, docs, stage(RECORDS), strict=True):
        assert doc.text == text
        assert span_tuples(doc.spans["medkg"]) == entity_tuples(entities)
        assert entity_tuples(doc._.medkg_entities) == entity_tuples(entities)
        assert relation_tuples(r.relation for r in doc._.relations) == relation_tuples(relations)
        for r in doc._.relations:
            assert (r.subject.start_char, r.subject.end_char, r.subject.label_) == (
                r.relation.subject.span.start, r.relation.subject.span.end, r.relation.subject.type.value)
            if isinstance(r.relation.object, Entity):
                assert r.object is not None and r.object._.assertion == r.relation.object.assertion.value
            else:
                assert r.object is None
        # doc.ents: the longest of overlapping entities, none lost that overlaps nothing
        ents = list(doc.ents)
        assert all(a.end_char <= b.start_char for a, b in itertools.pairwise(ents))
        assert set(span_tuples(ents)) <= set(span_tuples(doc.spans["medkg"]))
        for s in doc.spans["medkg"]:
            assert any(e.start_char <= s.start_char and s.end_char <= e.end_char for e in ents)
        assert all(e._.entity is not None and e._.entity.type.value == e.label_ for e in ents)
    first = {(e.text, e._.assertion) for e in docs[0].ents}
    assert {("糖尿病", "negated"), ("2型糖尿病", "family"), ("发热", "affirmed")} <= first
    family = [r for r in docs[0]._.relations if r.subject.text == "糖尿病" and r.subject._.assertion == "family"]
    assert family  # the relation model's own argument inside 父亲患有2型糖尿病 carries the family assertion


def test_ner_only_pipeline_is_the_tagger_and_the_assertion_rules(stage):
    from ner.assertions import assign
    from relations.spacy_pipeline import spacy_pipeline

    nlp = spacy_pipeline(stage=stage, relations=False)
    assert nlp.pipe_names == ["medkg_ner", "medkg_assertions"]
    text = "患者 无发热，\n咳嗽  3天。否认高血压病史，父亲有糖尿病。考虑肺炎？"
    doc = nlp(text)
    [found] = stage.tagger([text])
    assert doc.text == text and doc._.relations is None
    assert span_tuples(doc.spans["medkg"]) == entity_tuples(assign(text, found))
    assert {(e.text, e._.assertion) for e in doc.ents} >= {("发热", "negated"), ("高血压", "negated")}


def test_displacy_renders_the_entities(nlp):
    from spacy import displacy

    from relations.spacy_pipeline import render

    doc = nlp(RECORDS[0])
    html = displacy.render(doc, style="ent")
    assert isinstance(html, str) and html.count("<mark") == len(doc.ents)
    for e in doc.ents:
        assert e.text in html and e.label_ in html
    review = render(doc)
    assert "Disease·family" in review and "Disease·negated" in review and "#f4a6a6" in review
    nested = render(doc, nested=True)
    assert "BodyPart" in nested and "Symptom" in nested


def test_the_readme_example_runs_offline():
    """The README's example in a fresh interpreter whose sockets refuse to connect anywhere."""
    guard = ("import socket\n"
             "def _refuse(*a, **k):\n    raise OSError('network access in an offline example')\n"
             "socket.socket.connect = _refuse\nsocket.create_connection = _refuse\n")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-c", guard + README_EXAMPLE], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "('糖尿病', 'Disease', 'negated')" in proc.stdout and "<div" in proc.stdout, proc.stdout


def test_a_saved_pipeline_loads_again_with_spacy_load(stage, tmp_path):
    from relations.spacy_pipeline import spacy_pipeline

    spacy_pipeline(stage=stage, relations=False).to_disk(tmp_path / "nlp")
    nlp = spacy.load(tmp_path / "nlp")  # the components load the shipped models they name (none: the default)
    assert nlp.pipe_names == ["medkg_ner", "medkg_assertions"]
    doc = nlp("否认糖尿病史，咳嗽3天。")
    assert {(e.text, e.label_, e._.assertion) for e in doc.ents} >= {("糖尿病", "Disease", "negated")}

"""The shipped NER model with the assertion rules on real-EMR phrasing (issue 22): the negated findings of a
physical examination, and the main job's own sample records, come out as symptoms with the right assertion."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ner.assertions import assign
from ner.tagger import Tagger

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tagger():
    return Tagger.load()


def symptoms(tagger, text: str) -> dict[str, str]:
    (ents,) = tagger([text])
    return {e.span.text: e.assertion.value for e in assign(text, ents) if e.type.value == "Symptom"}


def test_negated_findings_of_a_physical_examination_are_negated_symptoms(tagger):
    # the phrasing of a real discharge record's examination that the shipped model used to miss entirely
    text = "查体：神志清，精神可，全身未见皮疹，无脱水貌，未见三凹征，双肺呼吸音粗，未闻及干湿啰音，腹软，未触及包块。"
    got = symptoms(tagger, text)
    for finding in ("皮疹", "脱水貌", "三凹征", "干湿啰音", "包块"):
        assert got.get(finding) == "negated", (finding, got)


def test_the_sample_records_chest_pain_is_a_negated_symptom(tagger):
    record = json.loads((ROOT / "samples" / "records.jsonl").read_text(encoding="utf-8").splitlines()[0])
    got = symptoms(tagger, record["text"])
    assert got.get("胸痛") == "negated", got
    assert got.get("咯血") == "negated" and got.get("呼吸困难") == "negated", got
    assert got.get("发热") == "affirmed", got

"""CMeIE examples: texts with their argument entities located by string, and the fixed md5 split.

CMeIE gives triples as strings without offsets. An entity is a (string, type) pair; every occurrence of
its string in the text is one of its mentions (the evaluation compares strings, so the model may use any
of them). Split (data README, used by every RE figure): *test* when the first hex digit of
``md5(text)`` is one of ``c d e f``, *train* otherwise; inside train, ``b`` is the tuning part.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

TEST_DIGITS = frozenset("cdef")
TUNE_DIGITS = frozenset("b")


def part(text: str) -> str:
    """``test`` / ``tune`` / ``train`` for a CMeIE text (the fixed split; ``tune`` is inside train)."""
    digit = hashlib.md5(text.encode("utf-8")).hexdigest()[0]
    return "test" if digit in TEST_DIGITS else "tune" if digit in TUNE_DIGITS else "train"


@dataclass(frozen=True)
class Schema:
    subject_type: str
    predicate: str
    object_type: str


@dataclass(frozen=True)
class Example:
    text: str
    entities: tuple[tuple[str, str], ...]  # (string, CMeIE type), each string found in the text
    triples: tuple[tuple[int, str, int], ...]  # (subject entity index, predicate label, object entity index)

    def gold(self) -> set[tuple[str, str, str]]:
        return {(self.entities[s][0], p, self.entities[o][0]) for s, p, o in self.triples}


def occurrences(text: str, s: str) -> list[tuple[int, int]]:
    """Every (possibly overlapping) occurrence of ``s`` in ``text`` as (start, end)."""
    out, i = [], text.find(s)
    while s and i >= 0:
        out.append((i, i + len(s)))
        i = text.find(s, i + 1)
    return out


def load_schemas(path: Path) -> list[Schema]:
    out = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.strip():
            d = json.loads(line)
            out.append(Schema(d["subject_type"], d["predicate"], d["object_type"]))
    return out


def _value(x) -> str:
    return x["@value"] if isinstance(x, dict) else x


def load_cmeie(path: Path) -> list[Example]:
    """One Example per line; triples whose strings are not in the text are dropped (none in CMeIE dev)."""
    out = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        d = json.loads(line)
        text, ents, index, triples = d["text"], [], {}, []
        for spo in d.get("spo_list", []):
            ids = []
            for s, t in ((spo["subject"], spo["subject_type"]), (_value(spo["object"]), _value(spo["object_type"]))):
                if not s or s not in text:
                    break
                if (s, t) not in index:
                    index[(s, t)] = len(ents)
                    ents.append((s, t))
                ids.append(index[(s, t)])
            else:
                triples.append((ids[0], spo["predicate"], ids[1]))
        out.append(Example(text, tuple(ents), tuple(dict.fromkeys(triples))))
    return out

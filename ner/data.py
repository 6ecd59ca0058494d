"""Annotated NER data: every supported format read into ``Example``s with end-exclusive spans.

Formats: Yidu-S4K JSON lines (``originalText``, ``entities``), CMeEE nested JSON (``start_idx``/``end_idx``
inclusive), CMeEE flattened BIO JSON lines (``text``, ``bio``), cMedQANER (``text``, ``mention_data``) and
CoNLL-style BIO (``char<TAB>tag`` lines, blank line between sentences). ``load`` sniffs which one a file is.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from ner.schema import SCHEMES

Spans = tuple[tuple[int, int, str], ...]


@dataclass(frozen=True)
class Example:
    text: str
    spans: Spans  # (start, end exclusive, dataset label)
    scheme: str
    source: str = ""
    inner: Spans = ()  # entities a flattened file's BIO had overwritten (nested_from_bio): gold, never training tags

    @property
    def gold(self) -> Spans:
        """What nested scoring compares against: the spans and the inner entities given back."""
        return tuple(sorted(self.spans + self.inner))


class DataFormatError(ValueError):
    pass


def _json_lines(path: Path) -> list[dict]:
    text = path.read_text(encoding="utf-8-sig").strip()
    if text.startswith("["):
        return json.loads(text)
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _keep(spans, text: str, scheme: str) -> Spans:
    """Spans of known labels that lie inside the text, deduplicated and sorted."""
    known = SCHEMES[scheme]
    return tuple(sorted({(s, e, lab) for s, e, lab in spans if lab in known and 0 <= s < e <= len(text)}))


def spans_from_bio(tags: list[str]) -> list[tuple[int, int, str]]:
    """Spans of a BIO sequence, repairing what flattening nested entities leaves behind (the outer spans of
    :func:`nested_from_bio`)."""
    return nested_from_bio(tags)[0]


def nested_from_bio(tags: list[str]) -> tuple[list[tuple[int, int, str]], list[tuple[int, int, str]]]:
    """(outer, inner) spans of a BIO sequence, undoing what flattening nested entities did.

    CMeEE's flattened BIO overwrites the part of an outer entity that an inner one covers: 内脏血管收缩
    becomes ``B-bod I-bod I-bod I-bod I-sym I-sym`` (inner at the start), and a body part in the middle of a
    symptom gives ``B-sym I-sym B-bod I-bod I-sym``. An ``I-x`` that does not continue an ``x`` therefore
    means an outer ``x`` around the spans just before it: it starts where the nearest ``x`` span that ends
    flush against them started (the middle case), or else where the span just before it started (the start
    case); the spans it swallows are the inner ones. After ``O`` an ``I-x`` simply starts a new span. An inner
    entity at the very end (``B-sym B-bod`` in 缺血) cannot be told from two adjacent entities and stays two
    outer spans.
    """
    spans: list[tuple[int, int, str]] = []
    inner: list[tuple[int, int, str]] = []
    start, label = None, None
    for i, tag in enumerate([*tags, "O"]):
        kind, _, lab = tag.partition("-")
        if kind == "I" and label == lab and start is not None:
            continue
        if kind == "I" and start is not None:  # orphan I-x right after another span: the outer x
            edge, outer_start = start, start
            for j in range(len(spans) - 1, -1, -1):  # the chain of spans flush against each other, backwards
                if spans[j][1] != edge:
                    break
                if spans[j][2] == lab:
                    outer_start = spans[j][0]
                    inner += spans[j + 1:]
                    del spans[j:]
                    break
                edge = spans[j][0]
            inner.append((start, i, label))
            start, label = outer_start, lab
            continue
        if start is not None:
            spans.append((start, i, label))
            start = label = None
        if kind in ("B", "I"):
            start, label = i, lab
    return spans, inner


def load_yidu(path: Path) -> list[Example]:
    return [Example(r["originalText"], _keep(((e["start_pos"], e["end_pos"], e["label_type"])
                                              for e in r.get("entities", [])), r["originalText"], "yidu"),
                    "yidu", f"{path.name}:{i}") for i, r in enumerate(_json_lines(path))]


def load_cmeee(path: Path) -> list[Example]:
    """CMeEE, official (nested) or flattened to BIO, whose repair keeps the outer spans and gives the inner ones back
    apart (``Example.inner``), so that held-out text is scored in the official nested convention."""
    out = []
    for i, r in enumerate(_json_lines(path)):
        if "bio" in r:
            spans, inner = nested_from_bio(list(r["bio"]))
        else:  # the official nested format, end_idx inclusive: its spans already nest
            spans, inner = [(e["start_idx"], e["end_idx"] + 1, e["type"]) for e in r.get("entities", [])], []
        out.append(Example(r["text"], _keep(spans, r["text"], "cmeee"), "cmeee", f"{path.name}:{i}",
                           _keep(inner, r["text"], "cmeee")))
    return out


def load_cmedqaner(path: Path) -> list[Example]:
    out = []
    for i, r in enumerate(_json_lines(path)):
        spans = [(int(m["offset"]), int(m["offset"]) + len(m["mention"]), m["type"]) for m in r["mention_data"]]
        out.append(Example(r["text"], _keep(spans, r["text"], "cmedqaner"), "cmedqaner", f"{path.name}:{i}"))
    return out


def load_bio(path: Path, scheme: str) -> list[Example]:
    out, chars, tags = [], [], []
    for line in [*path.read_text(encoding="utf-8-sig").splitlines(), ""]:
        if not line.strip():
            if chars:
                text = "".join(chars)
                out.append(Example(text, _keep(spans_from_bio(tags), text, scheme), scheme, f"{path.name}:{len(out)}"))
            chars, tags = [], []
            continue
        parts = line.rstrip("\n").split()
        char, tag = (parts[0], parts[-1]) if len(parts) >= 2 else (" ", parts[0])
        chars.append(char[:1])
        tags.append(tag)
    return out


def sniff(path: Path) -> str:
    """The format of an annotation file, from its first record."""
    head = path.read_text(encoding="utf-8-sig")[:20000].lstrip()
    if not head.startswith(("{", "[")):
        return "bio"
    first = _json_lines(path)[0] if head.startswith("[") else json.loads(head.splitlines()[0])
    for key, fmt in (("originalText", "yidu"), ("mention_data", "cmedqaner"), ("bio", "cmeee"),
                     ("entities", "cmeee")):
        if key in first:
            return fmt
    raise DataFormatError(f"{path}: unknown annotation format (keys {sorted(first)})")


def load(path: str | Path, fmt: str | None = None, scheme: str | None = None) -> list[Example]:
    """Read an annotation file; ``fmt`` is sniffed when not given. BIO files need their ``scheme``."""
    path = Path(path)
    fmt = fmt or sniff(path)
    if fmt == "yidu":
        return load_yidu(path)
    if fmt == "cmeee":
        return load_cmeee(path)
    if fmt == "cmedqaner":
        return load_cmedqaner(path)
    if fmt == "bio":
        if scheme not in SCHEMES:
            raise DataFormatError(f"{path}: a BIO file needs --scheme (one of {sorted(SCHEMES)})")
        return load_bio(path, scheme)
    raise DataFormatError(f"unknown format {fmt!r}")


def held_out(ex: Example, percent: int = 10) -> bool:
    """A fixed, content-based split of training data for early stopping (never the reporting sets)."""
    return int(hashlib.md5(ex.text.encode("utf-8")).hexdigest()[:8], 16) % 100 < percent

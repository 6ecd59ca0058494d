"""Annotated NER data: every supported format read into ``Example``s with end-exclusive spans.

Formats: Yidu-S4K JSON lines (``originalText``, ``entities``), CMeEE nested JSON (``start_idx``/``end_idx``
inclusive), CMeEE flattened BIO JSON lines (``text``, ``bio``), cMedQANER (``text``, ``mention_data``),
CCKS 2017 (a directory of ``<section>-N.txtoriginal.txt`` texts beside ``<section>-N.txt`` annotation lines
``entity<TAB>start<TAB>end<TAB>type``, end inclusive) and CoNLL-style BIO (``char<TAB>tag`` lines, blank line
between sentences). ``load`` sniffs which one a file (or directory) is.
"""

from __future__ import annotations

import hashlib
import json
import re
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


def outer_and_inner(spans) -> tuple[list[tuple[int, int, str]], list[tuple[int, int, str]]]:
    """Nested spans split as training's BIO sees them (``ner.train.tag_ids``): the first from the left, then the
    longest, wins; a span that overlaps a kept one is inner (gold for nested scoring, never a training tag)."""
    outer: list[tuple[int, int, str]] = []
    inner: list[tuple[int, int, str]] = []
    end = -1
    for s, e, lab in sorted(set(spans), key=lambda sp: (sp[0], -sp[1], sp[2])):
        if s < end:
            inner.append((s, e, lab))
        else:
            outer.append((s, e, lab))
            end = e
    return outer, inner


def load_cmeee(path: Path) -> list[Example]:
    """CMeEE, official (nested) or flattened to BIO, whose repair keeps the outer spans and gives the inner ones back
    apart (``Example.inner``), so that held-out text is scored in the official nested convention.

    The official file (``start_idx``/``end_idx`` inclusive) trains its outer spans and keeps the nested ones as
    ``inner``; an entity whose end lies before its start (one each in records 6051 and 6421 of the official
    training set) is dropped."""
    out = []
    for i, r in enumerate(_json_lines(path)):
        if "bio" in r:
            spans, inner = nested_from_bio(list(r["bio"]))
        else:  # the official nested format, end_idx inclusive
            spans, inner = outer_and_inner((e["start_idx"], e["end_idx"] + 1, e["type"]) for e in r.get("entities", [])
                                           if e["end_idx"] >= e["start_idx"])
        out.append(Example(r["text"], _keep(spans, r["text"], "cmeee"), "cmeee", f"{path.name}:{i}",
                           _keep(inner, r["text"], "cmeee")))
    return out


def load_cmedqaner(path: Path) -> list[Example]:
    out = []
    for i, r in enumerate(_json_lines(path)):
        spans = [(int(m["offset"]), int(m["offset"]) + len(m["mention"]), m["type"]) for m in r["mention_data"]]
        out.append(Example(r["text"], _keep(spans, r["text"], "cmedqaner"), "cmedqaner", f"{path.name}:{i}"))
    return out


# CCKS 2017: the fixed reporting split of the data README. Record N is test when N % 5 == 0 (reporting only: never
# trained, tuned or used to pick checkpoints), training otherwise.
CCKS17_PARTS = ("train", "test", "all")
_CCKS17_NAME = re.compile(r"^(?P<section>.+)-(?P<n>\d+)\.txt(?:original\.txt)?$")


def ccks17_record(name: str) -> int:
    """The record number N of a CCKS 2017 file name (``病史特点-15.txt`` or ``…-15.txtoriginal.txt``, or a path)."""
    m = _CCKS17_NAME.match(Path(name).name)
    if not m:
        raise DataFormatError(f"{name}: not a CCKS 2017 file name (<section>-N.txt / <section>-N.txtoriginal.txt)")
    return int(m["n"])


def ccks17_part(name: str) -> str:
    """``test`` when the record number is a multiple of 5 (the fixed reporting split), else ``train``."""
    return "test" if ccks17_record(name) % 5 == 0 else "train"


def ccks17_files(path: Path) -> list[Path]:
    """The annotation files (``<section>-N.txt``) of a CCKS 2017 root, section directory or single file (either of a
    record's two files names it), in a stable order (section, then N)."""
    if path.is_dir():
        files = [p for p in path.rglob("*.txt") if not p.name.endswith("original.txt") and _CCKS17_NAME.match(p.name)]
    else:
        files = [path.with_name(path.name.removesuffix("original.txt")) if path.name.endswith(".txtoriginal.txt")
                 else path]
    return sorted(files, key=lambda p: (str(p.parent), ccks17_record(p.name)))


def load_ccks17(path: Path, part: str = "all") -> list[Example]:
    """CCKS 2017 texts and annotations, end inclusive, of the split's ``part`` (train, test or all).

    The text is decoded from bytes, never through universal newlines: its offsets count the CR of a CRLF. The
    source is the original file's path under the root (``病史特点/病史特点-5.txtoriginal.txt``), which the
    negation fixture names."""
    if part not in CCKS17_PARTS:
        raise DataFormatError(f"--part {part!r}: one of {', '.join(CCKS17_PARTS)}")
    out = []
    for ann in ccks17_files(path):
        if part != "all" and ccks17_part(ann.name) != part:
            continue
        orig = ann.with_name(ann.name.removesuffix(".txt") + ".txtoriginal.txt")
        if not orig.is_file():
            raise DataFormatError(f"{ann}: no text file {orig.name} beside it")
        text = orig.read_bytes().decode("utf-8-sig")
        spans = []
        for k, line in enumerate(ann.read_bytes().decode("utf-8-sig").splitlines()):
            if not line.strip():
                continue
            parts = line.rstrip("\r\n").split("\t")
            if len(parts) < 4:
                raise DataFormatError(f"{ann}:{k + 1}: expected entity<TAB>start<TAB>end<TAB>type")
            s, e, lab = int(parts[1]), int(parts[2]) + 1, parts[3].strip()
            if text[s:e] != parts[0]:
                raise DataFormatError(f"{ann}:{k + 1}: {parts[0]!r} is not the text at {s}..{e - 1} ({text[s:e]!r})")
            spans.append((s, e, lab))
        out.append(Example(text, _keep(spans, text, "ccks17"), "ccks17", f"{orig.parent.name}/{orig.name}"))
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
    """The format of an annotation file (or a CCKS 2017 directory), from its first record."""
    if path.is_dir() or path.name.endswith(".txtoriginal.txt") or (
            _CCKS17_NAME.match(path.name) and path.with_name(path.name.removesuffix(".txt") + ".txtoriginal.txt").is_file()):
        if not ccks17_files(path):
            raise DataFormatError(f"{path}: a directory without CCKS 2017 files (<section>-N.txt beside "
                                  "<section>-N.txtoriginal.txt)")
        return "ccks17"
    head = path.read_text(encoding="utf-8-sig")[:20000].lstrip()
    if not head.startswith(("{", "[")):
        return "bio"
    first = _json_lines(path)[0] if head.startswith("[") else json.loads(head.splitlines()[0])
    for key, fmt in (("originalText", "yidu"), ("mention_data", "cmedqaner"), ("bio", "cmeee"),
                     ("entities", "cmeee")):
        if key in first:
            return fmt
    raise DataFormatError(f"{path}: unknown annotation format (keys {sorted(first)})")


def load(path: str | Path, fmt: str | None = None, scheme: str | None = None, part: str = "all") -> list[Example]:
    """Read an annotation file; ``fmt`` is sniffed when not given. BIO files need their ``scheme``. ``part``
    (train, test, all) picks one side of a dataset's fixed reporting split: CCKS 2017 has one; the other formats
    are one part each and ignore it."""
    path = Path(path)
    fmt = fmt or sniff(path)
    if fmt == "ccks17":
        return load_ccks17(path, part)
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


def text_sha256(text: str) -> str:
    """What an assertion fixture pins a source text by: the SHA-256 of its UTF-8 (the file's bytes, BOM-less)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def load_assertion_fixture(path: str | Path) -> dict[str, dict]:
    """Our own assertion labels on a dataset's mentions, keyed by source (``Example.source``): one JSON object a line,
    ``{"file", "sha256", "label", "mentions": [[start, end exclusive, assertion], …]}``. No text: the texts are read
    from the data itself, and :func:`assertion_gold` checks the hash before trusting an offset."""
    out = {}
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("//"):
            r = json.loads(line)
            out[r["file"]] = r
    return out


def assertion_gold(ex: Example, fixture: dict[str, dict]) -> list[tuple[int, int, str, str]] | None:
    """The fixture's (start, end, label, assertion) mentions of one example, or None where it has none of that text;
    a DataFormatError where the text is not the one annotated (hash) or a mention is not one of its gold spans."""
    r = fixture.get(ex.source)
    if r is None:
        return None
    if text_sha256(ex.text) != r["sha256"]:
        raise DataFormatError(f"{ex.source}: the text differs from the one the assertion fixture annotated")
    gold = set(ex.spans)
    out = []
    for s, e, status in r["mentions"]:
        if (s, e, r["label"]) not in gold:
            raise DataFormatError(f"{ex.source}: {s}..{e} is not a gold {r['label']} span")
        out.append((s, e, r["label"], status))
    return out

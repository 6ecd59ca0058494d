"""Inputs of the ingest pipelines: which files a command line names, and the clinical records inside a file.

Paths are expanded on the driver (so the progress bar knows how many files there are); files are opened in
the workers through Beam's ``FileSystems``, so ``gs://``/``s3://`` inputs work on the runners that reach them.
Record files are recognised by their content, not their name: Yidu-S4K ships JSON lines in ``.txt`` files and
its test set as JSON lines in a ``.json`` file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from core.records import ClinicalRecord

BILL_SUFFIXES = frozenset({".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".bmp", ".dib", ".webp", ".tif", ".tiff",
                           ".pdf"})
RECORD_SUFFIXES = frozenset({".txt", ".json", ".jsonl", ".ndjson"})
TEXT_KEYS = ("text", "originalText")  # generic / CMeEE / cMedQANER, and Yidu-S4K


class RecordError(ValueError):
    """One input of a record file that is not a usable record; ``ref`` names it (file, or file:line)."""

    reason = "invalid-record"

    def __init__(self, ref: str, message: str):
        super().__init__(ref, message)
        self.ref, self.message = ref, message

    def __str__(self) -> str:
        return f"{self.ref}: {self.message}"


class CorruptRecordFile(RecordError):
    reason = "corrupt"


@dataclass(frozen=True)
class Inputs:
    files: tuple[str, ...]
    skipped: tuple[str, ...]  # files inside named folders whose suffix is not one this command reads


def _is_remote(path: str) -> bool:
    return "://" in path


def expand(paths: Iterable[str | os.PathLike], suffixes: frozenset[str]) -> Inputs:
    """Files named on the command line, in order. A named file is always an input (a corrupt one is then
    dead-lettered, not dropped); a folder contributes its files with one of ``suffixes``, recursively, hidden
    files excluded. Globs and remote URIs are matched through Beam's ``FileSystems``."""
    files: list[str] = []
    skipped: list[str] = []
    for raw in paths:
        path = str(raw)
        if _is_remote(path) or any(ch in path for ch in "*?["):
            from apache_beam.io.filesystems import FileSystems

            files += sorted(m.path for r in FileSystems.match([path]) for m in r.metadata_list)
        elif Path(path).is_dir():
            for root, dirs, names in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for name in sorted(names):
                    if name.startswith("."):
                        continue
                    target = files if Path(name).suffix.lower() in suffixes else skipped
                    target.append(os.path.join(root, name))
        elif Path(path).exists():
            files.append(path)
        else:
            raise FileNotFoundError(path)
    return Inputs(tuple(dict.fromkeys(files)), tuple(skipped))


def read_bytes(path: str, limit: int | None = None) -> bytes:
    """A file's bytes through Beam's ``FileSystems`` (local or remote), at most ``limit + 1`` of them."""
    from apache_beam.io.filesystem import CompressionTypes
    from apache_beam.io.filesystems import FileSystems

    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        return f.read() if limit is None else f.read(limit + 1)


# --- clinical records --------------------------------------------------------------------------------


Parsed = tuple[str, ClinicalRecord] | RecordError  # (reference: file, file:line or file[i]; record) or why not


def parse_records(path: str, data: bytes) -> Iterator[Parsed]:
    """Every record of one file, in order, with its reference; an input that is not a record comes out as a
    ``RecordError`` (so a bad line costs that line, not the file). Formats, sniffed from the content:

    - JSON lines: ``{"text" | "originalText": ..., "patient_id"?, "encounter_id"?, "doc_id"?, "date"?}``
      per line (generic, Yidu-S4K, cMedQANER); blank lines are skipped;
    - a JSON array of such objects (CMeEE), or one such object;
    - anything else: the whole file is one record's text (a folder of ``.txt`` files).
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        yield CorruptRecordFile(path, f"not UTF-8 text ({exc.reason} at byte {exc.start})")
        return
    if "\x00" in text:
        yield CorruptRecordFile(path, "binary content (NUL bytes), not text")
        return
    head = text.lstrip()[:1]
    if head == "[":
        yield from _json_array(path, text)
    elif head == "{":
        try:
            obj = json.loads(text)  # one object, perhaps over several lines
        except ValueError:  # JSON lines: a bad line costs that line only, the first one included
            yield from _json_lines(path, text)
        else:
            yield _record(path, obj, path)
    elif not text.strip():
        yield RecordError(path, "empty file")
    else:
        yield _record(path, {"text": text}, path)


def _json_lines(path: str, text: str) -> Iterator[Parsed]:
    for no, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        ref = f"{path}:{no}"
        try:
            obj = json.loads(line)
        except ValueError as exc:
            yield RecordError(ref, f"invalid JSON: {exc}")
            continue
        yield _record(ref, obj, path)


def _json_array(path: str, text: str) -> Iterator[Parsed]:
    try:
        items = json.loads(text)
    except ValueError as exc:
        yield CorruptRecordFile(path, f"invalid JSON array: {exc}")
        return
    if not isinstance(items, list):
        yield CorruptRecordFile(path, "a JSON value that is not an array of records")
        return
    for i, obj in enumerate(items):
        yield _record(f"{path}[{i}]", obj, path)


def _record(ref: str, obj, path: str) -> Parsed:
    if not isinstance(obj, dict):
        return RecordError(ref, f"a record is a JSON object, got {type(obj).__name__}")
    text = next((obj[k] for k in TEXT_KEYS if isinstance(obj.get(k), str)), None)
    if text is None:
        return RecordError(ref, f"no text: a record needs one of {', '.join(TEXT_KEYS)} as a string")
    if not text.strip():
        return RecordError(ref, "empty text")
    try:
        when = obj.get("date")
        return ref, ClinicalRecord.of(
            text, doc_id=_opt_str(obj.get("doc_id")), source_uri=path,
            patient_id=_opt_str(obj.get("patient_id")), encounter_id=_opt_str(obj.get("encounter_id")),
            recorded_on=date.fromisoformat(str(when)[:10]) if when else None)
    except ValueError as exc:  # pydantic's ValidationError is a ValueError too
        return RecordError(ref, f"invalid field: {exc}")


def _opt_str(value) -> str | None:
    return None if value is None or value == "" else str(value)

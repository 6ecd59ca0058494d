"""Typed records shared by every stage: plain data in, plain data out.

Every record is a frozen pydantic model so it validates at the boundary and serialises to JSON
without glue. Coordinates are pixels of the page image the record came from (origin top-left).
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from enum import Enum
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

Point = tuple[float, float]
Quad = tuple[Point, Point, Point, Point]  # clockwise from top-left


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Provenance(Record):
    """Which model (and version) produced a record, and when."""

    model: str
    version: str = ""
    precision: str = ""
    at: datetime = Field(default_factory=utcnow)


class DocumentKind(str, Enum):
    image = "image"
    pdf = "pdf"
    text = "text"
    hl7 = "hl7"
    fhir = "fhir"


class Document(Record):
    """One input file or message. ``doc_id`` is the sha256 of its bytes, so re-ingest is idempotent."""

    doc_id: str
    kind: DocumentKind
    source_uri: str
    media_type: str = ""
    size_bytes: int = 0
    patient_id: str | None = None
    encounter_id: str | None = None

    @classmethod
    def from_bytes(cls, data: bytes, kind: DocumentKind, source_uri: str | Path, **kw) -> Document:
        return cls(doc_id=sha256_bytes(data), kind=kind, source_uri=str(source_uri), size_bytes=len(data), **kw)


class TextLine(Record):
    """A line of text on a page: its quadrilateral, its text and how sure the recogniser was."""

    box: Quad
    text: str
    confidence: float = Field(ge=0.0, le=1.0)

    @field_validator("box", mode="before")
    @classmethod
    def _round_box(cls, v):
        return tuple((round(float(x), 1), round(float(y), 1)) for x, y in v)

    @property
    def left(self) -> float:
        return min(p[0] for p in self.box)

    @property
    def top(self) -> float:
        return min(p[1] for p in self.box)

    @property
    def right(self) -> float:
        return max(p[0] for p in self.box)

    @property
    def bottom(self) -> float:
        return max(p[1] for p in self.box)


class TextSource(str, Enum):
    ocr = "ocr"
    pdf_text = "pdf-text"  # the PDF's own text layer, no recognition needed


class Page(Record):
    """One page of a document after OCR: lines in reading order, in the upright page's pixels."""

    doc_id: str
    index: int = Field(ge=0)
    width: int
    height: int
    rotation: int = Field(0, description="clockwise degrees applied to make the page upright")
    source: TextSource = TextSource.ocr
    lines: tuple[TextLine, ...] = ()
    provenance: Provenance | None = None

    @property
    def text(self) -> str:
        return "\n".join(line.text for line in self.lines)


class Span(Record):
    """Character offsets into a document's text, end exclusive."""

    start: int = Field(ge=0)
    end: int = Field(ge=0)
    text: str


class Finding(Record):
    """The result of a check or reconciliation rule."""

    rule: str
    severity: str
    detail: str

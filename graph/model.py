"""The graph model's vocabulary: the allow-lists of labels and relationship types, the CMeIE predicate map,
and how concept keys and sentences are derived from text.

Labels, relationship types and property names are the only parts of a Cypher statement that cannot be
parameters; everything the writer and the queries put into query text comes from the tables here.
"""

from __future__ import annotations

import bisect
import re
import unicodedata

from core.predicates import CMEIE_PREDICATES
from graph.schema import CONCEPT_LABELS

NODE_LABELS: frozenset[str] = frozenset({
    "Patient", "Encounter", "Document", "Statement", "Claim", "LineItem", "CatalogItem", "Finding", *CONCEPT_LABELS,
})

# concept -> concept relationship types: every CMeIE predicate, a finding's body site, and a generic one
CONCEPT_PREDICATES: tuple[str, ...] = (*dict.fromkeys(CMEIE_PREDICATES.values()), "HAS_BODY_SITE", "RELATED_TO")

STRUCTURE_TYPES: tuple[str, ...] = (
    "HAS_ENCOUNTER", "HAS_DOCUMENT", "MENTIONS", "BILLED_TO", "FROM_DOCUMENT", "HAS_ITEM", "MATCHES",
    "HAS_FINDING", "STATES", "HAS_SUBJECT", "HAS_OBJECT",
)
RELATIONSHIP_TYPES: frozenset[str] = frozenset({*STRUCTURE_TYPES, *CONCEPT_PREDICATES})

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def check_label(label: str) -> str:
    if not isinstance(label, str) or label not in NODE_LABELS:
        raise ValueError(f"label {label!r} is not in the graph model's allow-list")
    return label


def check_concept_label(label: str) -> str:
    if not isinstance(label, str) or label not in CONCEPT_LABELS:
        raise ValueError(f"{label!r} is not a concept label ({', '.join(CONCEPT_LABELS)})")
    return label


def check_rel_type(rel_type: str) -> str:
    if not isinstance(rel_type, str) or rel_type not in RELATIONSHIP_TYPES:
        raise ValueError(f"relationship type {rel_type!r} is not in the graph model's allow-list")
    return rel_type


def check_prop(name: str) -> str:
    """Property names travel in parameter maps, but are still held to plain identifiers: no backticks,
    spaces or Cypher punctuation can reach a server's property store through us."""
    if not isinstance(name, str) or not _IDENT.match(name):
        raise ValueError(f"property name {name!r} is not a plain identifier")
    return name


def predicate_type(predicate: str) -> str:
    """The relationship type for a relation's predicate: an English type of the allow-list as is, a CMeIE
    source label through :data:`CMEIE_PREDICATES`; anything else is refused."""
    if predicate in CONCEPT_PREDICATES:
        return predicate
    if predicate in CMEIE_PREDICATES:
        return CMEIE_PREDICATES[predicate]
    raise ValueError(f"predicate {predicate!r} is neither in CONCEPT_PREDICATES nor a CMeIE label")


_SPACE = re.compile(r"\s+")


def concept_key(name: str) -> str:
    """A concept's key within its label: NFKC (full-width letters, digits and brackets become ASCII),
    whitespace runs collapsed to one space, stripped, lower-cased. ``"  ＣＴ 检查 "`` -> ``"ct 检查"``.
    Chinese text is unchanged apart from width folding; no synonym merging happens here."""
    return _SPACE.sub(" ", unicodedata.normalize("NFKC", name)).strip().lower()


# a sentence ends after one of these (kept with the sentence) or at a line break
_SENTENCE_END = re.compile(r"[。！？；!?;]+|\n+")


class Sentences:
    """Sentence boundaries of a text, for the ``sentence`` of a mention and a relation's evidence unit."""

    def __init__(self, text: str):
        self.text = text
        self.ends = [m.end() for m in _SENTENCE_END.finditer(text)]

    def index(self, offset: int) -> int:
        """Index of the sentence containing character ``offset``."""
        return bisect.bisect_right(self.ends, offset)

    def bounds(self, index: int) -> tuple[int, int]:
        start = self.ends[index - 1] if index > 0 else 0
        end = self.ends[index] if index < len(self.ends) else len(self.text)
        return start, end

    def context(self, start: int, end: int, limit: int = 160) -> str:
        """The sentence around ``[start, end)``, cut to ``limit`` characters centred on the span."""
        s, e = self.bounds(self.index(start))
        e = max(e, end)
        if e - s > limit:
            pad = max(0, (limit - (end - start)) // 2)
            s, e = max(s, start - pad), min(e, end + pad)
        return self.text[s:e].strip()

"""The relation stage: texts in, argument entities and typed triples with evidence out.

    extractor = RelationExtractor.load()        # the shipped model (or MEDKG_RE_MODEL)
    extractor(["肺炎@患者咳嗽、发热，给予阿莫西林治疗。"])   # -> [Extraction(entities, relations)]

Long texts are cut into overlapping windows; a triple is read inside one window (an argument pair further
apart than a window is not related). Bounds: at most ``max_entities`` argument entities per window (the
highest-scoring kept), so at most ``max_entities * (max_entities - 1)`` pairs are ever scored, and only
pairs whose types some schema allows.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from core.predicates import CMEIE_PREDICATES, CMEIE_TYPES
from core.records import Entity, Relation, Span
from ner.windows import windows

SHIPPED = Path(__file__).resolve().parents[1] / "models" / "relations"
WINDOW, OVERLAP = 300, 64  # characters; CMeIE texts are ≤ 300 characters, so one window each
_SENTENCE_END = re.compile(r"[。！？!?\n]")
_BOUNDARY = frozenset("@。！？!?\n")


def resolve_model_dir(model_dir: str | Path | None = None) -> Path:
    """The argument, else ``MEDKG_RE_MODEL``, else the model shipped in ``models/relations``."""
    from relations.model import CONFIG

    path = Path(model_dir or os.environ.get("MEDKG_RE_MODEL") or SHIPPED)
    if not (path / CONFIG).is_file():
        raise FileNotFoundError(f"no relation model in {path} (expected {CONFIG}; train one with "
                                "`medkg relations train`)")
    return path


@dataclass
class Argument:
    """An argument entity inside one window: a (string, type) with all its mentions (global offsets)."""

    text: str
    type: str
    mentions: list[tuple[int, int]] = field(default_factory=list)
    score: float = 0.0


@dataclass
class Triple:
    subject: Argument
    predicate: str
    object: Argument
    score: float

    @property
    def key(self) -> tuple[str, str, str]:
        return self.subject.text, self.predicate, self.object.text


@dataclass
class Extraction:
    entities: list[Entity]
    relations: list[Relation]
    truncated: int = 0  # argument entities dropped by the max_entities bound


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


class RelationExtractor:
    def __init__(self, model, vocab, meta: dict, precision: str | None = None, max_entities: int = 48,
                 max_tokens: int = 6144, threads: int | None = None):
        import torch

        from core.hardware import probe
        from core.precision import choose_re_precision

        if threads:
            torch.set_num_threads(threads)
        self.precision = precision or choose_re_precision(probe()).precision
        if self.precision not in ("fp32", "bf16", "int8"):
            raise ValueError(f"precision {self.precision!r}: expected fp32, bf16 or int8")
        if self.precision == "int8":  # dynamic INT8 of every Linear: the AVX2-only candidate
            model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
        self.model, self.vocab, self.meta = model.eval(), vocab, meta
        self.max_entities, self.max_tokens = max_entities, max_tokens
        # score thresholds picked on the train part's tune slice after training (0 = the loss's own boundary)
        self.span_threshold = float(meta.get("thresholds", {}).get("span", 0.0))
        self.pair_threshold = float(meta.get("thresholds", {}).get("pair", 0.0))
        self.name = f"{meta.get('name', 'relations')}@torch-{self.precision}"

    @classmethod
    def load(cls, model_dir: str | Path | None = None, **kw) -> RelationExtractor:
        from relations.model import load

        model, vocab, meta = load(resolve_model_dir(model_dir))
        return cls(model, vocab, meta, **kw)

    # the model's view: strings, types and scores
    def triples(self, texts: Sequence[str]) -> list[tuple[list[Argument], list[Triple], int]]:
        """Per text: its argument entities, its triples (best score per (subject, predicate, object)
        string triple) and how many arguments the bound dropped."""
        import torch

        from ner.tagger import batches
        from relations.model import NEG, gap

        pieces = [(t, s, e) for t, text in enumerate(texts) for s, e in windows(len(text), WINDOW, OVERLAP) if e > s]
        args: list[list[Argument]] = [[] for _ in texts]
        best: list[dict[tuple, Triple]] = [{} for _ in texts]
        dropped = [0] * len(texts)
        m, v = self.model, self.vocab
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.precision == "bf16"):
            for batch in batches([e - s for _, s, e in pieces], self.max_tokens, max_batch=32):
                width = max(pieces[i][2] - pieces[i][1] for i in batch) + 2
                ids = torch.full((len(batch), width), v.pad, dtype=torch.long)
                mask = torch.zeros((len(batch), width), dtype=torch.long)
                for r, i in enumerate(batch):
                    t, s, e = pieces[i]
                    row = [v.cls, *v.encode(texts[t][s:e]), v.sep]
                    ids[r, :len(row)], mask[r, :len(row)] = torch.tensor(row), 1
                h = m.encode(ids, mask)
                scores = m.span_scores(h, mask).masked_fill(_crossing(texts, pieces, batch, width)[:, None], NEG)
                found = (scores > self.span_threshold).nonzero().tolist()
                per_row: list[dict[tuple[str, int], Argument]] = [{} for _ in batch]
                for r, ti, i, j in found:
                    t, s, _ = pieces[batch[r]]
                    start, end = s + i - 1, s + j  # position p holds character p - 1 of the window
                    key = (texts[t][start:end], ti)
                    a = per_row[r].setdefault(key, Argument(key[0], m.types[ti]))
                    a.mentions.append((start, end))
                    a.score = max(a.score, float(scores[r, ti, i, j]))
                ents, types, first_last = [], [], []  # kept arguments, their types, mentions as model positions
                for r, group in enumerate(per_row):
                    t, s, _ = pieces[batch[r]]
                    kept = sorted(group.items(), key=lambda kv: -kv[1].score)
                    dropped[t] += max(0, len(kept) - self.max_entities)
                    for (_, ti), a in kept[:self.max_entities]:
                        ents.append((r, a))
                        types.append(ti)
                        first_last.append([(a0 - s + 1, b0 - s) for a0, b0 in a.mentions])
                        args[t].append(a)
                pairs = [(x, y) for x, (rx, ax) in enumerate(ents) for y, (ry, ay) in enumerate(ents)
                         if x != y and rx == ry and ax.text != ay.text and m.pairable[types[x]][types[y]]]
                if not pairs:
                    continue
                mentions = torch.tensor([(ents[k][0], *fl) for k, ms in enumerate(first_last) for fl in ms])
                owners = torch.tensor([k for k, ms in enumerate(first_last) for _ in ms])
                vec = m.entity_vectors(h, mentions, owners, len(ents))
                gaps = torch.tensor([(ents[x][0], *gap(first_last[x], first_last[y])) for x, y in pairs])
                ps = m.pair_scores(vec, torch.tensor(types), torch.tensor(pairs), m.between(h, gaps))
                for (x, y), row in zip(pairs, ps.tolist()):
                    r, a = ents[x]
                    t = pieces[batch[r]][0]
                    for pi, sc in enumerate(row):
                        if sc > self.pair_threshold:
                            tr = Triple(a, m.predicates[pi], ents[y][1], sc)
                            if tr.key not in best[t] or best[t][tr.key].score < sc:
                                best[t][tr.key] = tr
        return [(args[t], sorted(best[t].values(), key=lambda x: -x.score), dropped[t]) for t in range(len(texts))]

    # records
    def __call__(self, texts: Sequence[str]) -> list[Extraction]:
        return [self._records(text, *got) for text, got in zip(texts, self.triples(texts))]

    def _records(self, text: str, arguments: list[Argument], triples: list[Triple], dropped: int) -> Extraction:
        entities: dict[tuple[int, int, str], Entity] = {}

        def entity(a: Argument, start: int, end: int) -> Entity:
            typ = CMEIE_TYPES[a.type]
            key = (start, end, typ.value)
            if key not in entities:
                entities[key] = Entity(span=Span(start=start, end=end, text=text[start:end]), type=typ,
                                       confidence=round(_sigmoid(a.score), 4), model=self.name)
            return entities[key]

        for a in arguments:
            for s, e in a.mentions:
                entity(a, s, e)
        relations = []
        for tr in triples:  # the closest pair of mentions carries the triple
            (s0, s1), (o0, o1) = min(((sm, om) for sm in tr.subject.mentions for om in tr.object.mentions),
                                     key=lambda p: abs(p[0][0] - p[1][0]))
            relations.append(Relation(
                subject=entity(tr.subject, s0, s1), predicate=CMEIE_PREDICATES[tr.predicate], label=tr.predicate,
                object=entity(tr.object, o0, o1), evidence=_sentence_span(text, min(s0, o0), max(s1, o1)),
                confidence=round(_sigmoid(tr.score), 4), model=self.name))
        return Extraction(sorted(entities.values(), key=lambda e: (e.span.start, e.span.end)), relations, dropped)


def _crossing(texts, pieces, batch, width: int):
    """``[B, L, L]``: True where a span would contain a hard boundary (``@`` of CMeIE's topic prefix, a sentence
    end or a line break). No argument in CMeIE's train part contains one, so such spans are never arguments."""
    import torch

    hard = torch.zeros((len(batch), width), dtype=torch.long)
    for r, i in enumerate(batch):
        t, s, e = pieces[i]
        for k, ch in enumerate(texts[t][s:e]):
            if ch in _BOUNDARY:
                hard[r, k + 1] = 1
    before = torch.cumsum(hard, 1) - hard  # boundaries strictly before each position
    upto = torch.cumsum(hard, 1)
    return (upto[:, None, :] - before[:, :, None]) > 0


def _sentence_span(text: str, lo: int, hi: int) -> Span:
    """The sentence(s) around characters ``lo..hi``: the evidence a reader checks a triple against."""
    starts = [m.end() for m in _SENTENCE_END.finditer(text, 0, lo)]
    start = starts[-1] if starts else 0
    m = _SENTENCE_END.search(text, hi)
    end = m.end() if m else len(text)
    return Span(start=start, end=end, text=text[start:end])

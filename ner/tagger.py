"""The NER stage: texts in, typed entities with exact character offsets out.

    tagger = Tagger.load()            # the shipped model (or MEDKG_NER_MODEL), backend by the policy
    tagger(["患者无发热，诊断肺炎。"])  # -> [[Entity(Disease 肺炎 9..11), ...]]

Windows of every text are sorted by length and cut into batches under a token budget (little padding,
one model call per batch across texts); per-character scores are stitched back per text and decoded
with constrained Viterbi per scheme. The *primary* scheme (Yidu-S4K's, the EMR convention) gives the
entities; the other heads only add types the primary lacks (symptoms, departments, microbes, …) where
they overlap nothing already found.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from core.records import Entity, Span
from ner.decode import allowed_transitions, spans, viterbi
from ner.schema import entity_type
from ner.windows import stitch, windows

WINDOW = 254  # characters per window (+ CLS/SEP = 256 positions)
OVERLAP = 64


def log_softmax(x: np.ndarray) -> np.ndarray:
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


def batches(lengths: list[int], max_tokens: int, max_batch: int = 64) -> list[list[int]]:
    """Indices grouped into batches of similar length whose padded size stays under ``max_tokens``."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    out, cur = [], []
    for i in order:
        if cur and ((len(cur) + 1) * (lengths[i] + 2) > max_tokens or len(cur) >= max_batch):
            out.append(cur)
            cur = []
        cur.append(i)
    if cur:
        out.append(cur)
    return out


class Tagger:
    def __init__(self, backend, vocab, meta: dict, primary: str | None = None, window: int = WINDOW,
                 overlap: int = OVERLAP, max_tokens: int = 8192):
        self.backend, self.vocab, self.meta = backend, vocab, meta
        self.labels: dict[str, list[str]] = meta["schemes"]
        self.primary = primary or ("yidu" if "yidu" in self.labels else next(iter(self.labels)))
        self.window, self.overlap, self.max_tokens = window, overlap, max_tokens
        self.masks = {s: allowed_transitions(labs) for s, labs in self.labels.items()}
        self.primary_types = {entity_type(self.primary, lab[2:]) for lab in self.labels[self.primary] if lab != "O"}
        self.name = f"{meta.get('name', 'ner')}@{backend.name}"

    @classmethod
    def load(cls, model_dir: str | Path | None = None, backend: str | None = None, **kw) -> Tagger:
        from ner.backends import open_backend, resolve_model_dir
        from ner.modeldir import load_meta

        model_dir = resolve_model_dir(model_dir)
        vocab, meta = load_meta(model_dir)

        def torch_model():
            from ner.model import load

            return load(model_dir)[0]

        return cls(open_backend(torch_model, backend, model_dir=model_dir, schemes=list(meta["schemes"])), vocab, meta,
                   **kw)

    # scores
    def scores(self, texts: Sequence[str]) -> list[dict[str, np.ndarray]]:
        """Per text, per scheme: log-probabilities [len(text), labels]."""
        pieces = [(t, s, e) for t, text in enumerate(texts) for s, e in windows(len(text), self.window, self.overlap)
                  if e > s]
        got: dict[int, dict[str, np.ndarray]] = {}
        v = self.vocab
        for batch in batches([e - s for _, s, e in pieces], self.max_tokens):
            width = max(pieces[i][2] - pieces[i][1] for i in batch) + 2
            width = self.backend.pad_to(width)
            ids = np.full((len(batch), width), v.pad, np.int64)
            mask = np.zeros((len(batch), width), np.int64)
            for r, i in enumerate(batch):
                t, s, e = pieces[i]
                row = [v.cls, *v.encode(texts[t][s:e]), v.sep]
                ids[r, :len(row)], mask[r, :len(row)] = row, 1
            out = self.backend(ids, mask)
            for r, i in enumerate(batch):
                n = pieces[i][2] - pieces[i][1]
                got[i] = {sch: log_softmax(out[sch][r, 1:n + 1].astype(np.float32)) for sch in self.labels}
        result, k = [], 0
        for t, text in enumerate(texts):
            mine = []
            while k < len(pieces) and pieces[k][0] == t:
                mine.append(k)
                k += 1
            result.append({sch: stitch(len(text), [(pieces[i][1:], got[i][sch]) for i in mine])
                           if mine else np.zeros((0, len(labs)), np.float32)
                           for sch, labs in self.labels.items()})
        return result

    def decode(self, logp: np.ndarray, scheme: str) -> list[tuple[int, int, str, float]]:
        start, trans = self.masks[scheme]
        return spans(viterbi(logp, start, trans), logp, self.labels[scheme])

    def spans(self, texts: Sequence[str], scheme: str) -> list[list[tuple[int, int, str, float]]]:
        """Spans in one scheme's own labels (what evaluation on that dataset compares)."""
        return [self.decode(sc[scheme], scheme) for sc in self.scores(texts)]

    # entities
    def __call__(self, texts: Sequence[str]) -> list[list[Entity]]:
        out = []
        for text, sc in zip(texts, self.scores(texts)):
            found = [(s, e, entity_type(self.primary, lab), c) for s, e, lab, c in self.decode(sc[self.primary],
                                                                                               self.primary)]
            taken = np.zeros(len(text), bool)
            for s, e, _, _ in found:
                taken[s:e] = True
            for sch in self.labels:
                if sch == self.primary:
                    continue
                for s, e, lab, c in self.decode(sc[sch], sch):
                    typ = entity_type(sch, lab)
                    if typ not in self.primary_types and not taken[s:e].any():
                        found.append((s, e, typ, c))
                        taken[s:e] = True
            out.append([Entity(span=Span(start=s, end=e, text=text[s:e]), type=typ, confidence=min(1.0, c),
                               model=self.name) for s, e, typ, c in sorted(found, key=lambda x: (x[0], x[1]))])
        return out

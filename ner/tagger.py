"""The NER stage: texts in, typed entities with exact character offsets out.

    tagger = Tagger.load()            # the shipped model (or MEDKG_NER_MODEL), backend by the policy
    tagger(["患者无发热，诊断肺炎。"])  # -> [[Entity(Disease 肺炎 9..11), ...]]

Windows of every text are sorted by length and cut into batches under a token budget (little padding,
one model call per batch across texts); per-character scores are stitched back per text and decoded
with constrained Viterbi per scheme. The *primary* scheme (Yidu-S4K's, the EMR convention) gives the
entities; the other heads only add types the primary lacks (symptoms, departments, microbes, …), beside
the primary's entities or enclosing them whole (``ner.schema.ENCLOSING``: the symptom 腹部疼痛 around the body
part 腹部), never cutting one; real EMR text's heads first (``ner.schema.SECONDARY_ORDER``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from core.records import Entity, Span
from ner.decode import spans, transition_scores, viterbi
from ner.schema import ENCLOSING, NESTED, SCHEMES, SECONDARY_ORDER, entity_type
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


def owners(n: int, spans: list) -> np.ndarray:
    """Per character (plus one sentinel past the end), the index of the non-overlapping span holding it, or -1."""
    out = np.full(n + 1, -1, np.int64)
    for k, (s, e, *_) in enumerate(spans):
        out[s:e] = k
    return out


def encloses_or_clears(owner: np.ndarray, spans: list, s: int, e: int) -> bool:
    """Whether [s, e) stands clear of ``spans`` or encloses whole ones: it cuts none and repeats none."""
    left, right = owner[s], owner[e - 1]
    if (s > 0 and left >= 0 and owner[s - 1] == left) or (right >= 0 and owner[e] == right):
        return False
    return not (left >= 0 and tuple(spans[left][:2]) == (s, e))


class Tagger:
    def __init__(self, backend, vocab, meta: dict, primary: str | None = None, window: int = WINDOW,
                 overlap: int = OVERLAP, max_tokens: int = 8192):
        self.backend, self.vocab, self.meta = backend, vocab, meta
        self.labels: dict[str, list[str]] = meta["schemes"]
        self.primary = primary or ("yidu" if "yidu" in self.labels else next(iter(self.labels)))
        self.window, self.overlap, self.max_tokens = window, overlap, max_tokens
        self.masks = {s: transition_scores(labs, meta.get("transitions", {}).get(s)) for s, labs in self.labels.items()}
        self.primary_types = {entity_type(self.primary, lab[2:]) for lab in self.labels[self.primary] if lab != "O"}
        rank = {s: i for i, s in enumerate(SECONDARY_ORDER)}
        self.secondary = sorted((s for s in self.labels if s != self.primary), key=lambda s: rank.get(s, len(rank)))
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

    def spans(self, texts: Sequence[str], scheme: str, nested: bool = True) -> list[list[tuple[int, int, str, float]]]:
        """Spans in one scheme's own labels (what evaluation on that dataset compares).

        A scheme that nests (``ner.schema.NESTED``) also gets its inner entities, unless ``nested`` is off
        (flattened gold): the other heads' spans that lie strictly inside one of its spans of a label that
        may hold others, in a type the scheme has other than that label (CMeEE's bod 腹部 in sym 腹部疼痛)."""
        out = []
        for text, sc in zip(texts, self.scores(texts)):
            found = self.decode(sc[scheme], scheme)
            if nested and scheme in NESTED:
                found = sorted(found + self._inner(sc, scheme, found, len(text)))
            out.append(found)
        return out

    def _inner(self, sc: dict[str, np.ndarray], scheme: str, outer: list, n: int) -> list:
        label_of = {entity_type(scheme, lab): lab for lab in SCHEMES[scheme]}
        outer = [span for span in outer if span[2] in NESTED[scheme]]
        owner = owners(n, outer)
        got = {}
        for sch in self.labels:
            if sch == scheme:
                continue
            for s, e, lab, c in self.decode(sc[sch], sch):
                k, typ = owner[s], entity_type(sch, lab)
                # inside a span of a label that holds *other* types: never one of its own (CMeEE's sym holds the
                # other eight types, so CCKS 2017's 疼痛 is no inner symptom of the sym 腹部疼痛)
                if (typ in label_of and k >= 0 and owner[e - 1] == k and outer[k][:2] != (s, e)
                        and label_of[typ] != outer[k][2]):
                    got.setdefault((s, e, label_of[typ]), c)
        return [(s, e, lab, c) for (s, e, lab), c in got.items()]

    # entities
    def __call__(self, texts: Sequence[str]) -> list[list[Entity]]:
        out = []
        for text, sc in zip(texts, self.scores(texts)):
            found = [(s, e, entity_type(self.primary, lab), c) for s, e, lab, c in self.decode(sc[self.primary],
                                                                                               self.primary)]
            owner, primary = owners(len(text), found), list(found)
            taken = np.zeros(len(text), bool)  # by the other heads' additions, which never overlap each other
            for sch in self.secondary:
                nests = ENCLOSING.get(sch, frozenset())
                for s, e, lab, c in self.decode(sc[sch], sch):
                    typ = entity_type(sch, lab)
                    if typ in self.primary_types or taken[s:e].any():
                        continue
                    if owner[s:e].max(initial=-1) < 0 or (lab in nests and encloses_or_clears(owner, primary, s, e)):
                        found.append((s, e, typ, c))
                        taken[s:e] = True
            out.append([Entity(span=Span(start=s, end=e, text=text[s:e]), type=typ, confidence=min(1.0, c),
                               model=self.name) for s, e, typ, c in sorted(found, key=lambda x: (x[0], x[1]))])
        return out

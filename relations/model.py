"""The joint entity-and-relation network: one encoder pass per text, then two small heads.

* ``spans``: a GlobalPointer-style scorer. For every argument type ``t`` and every pair of positions
  ``i <= j`` a score ``q_t(i) · k_t(j)`` (rotary position encoding, so the score knows the span's width);
  a span of type ``t`` is predicted where the score is > 0. Spans may nest and overlap (CMeIE's do:
  "肺癌" and "肺"), which a BIO tagger could not express.
* ``pairs``: an entity is a (string, type); its vector is the mean over its mentions of a projection of
  the encoder states at the mention's first and last character. An ordered pair of entity vectors (with
  their product, type embeddings and the mean state of the text *between* their closest mentions: the words
  that say how they relate, "可用…治疗", "表现为") is scored against every predicate; only the predicates the
  53 schemas allow for the two types are ever considered, and one is predicted where its score is > 0.

Both heads train with the multi-label categorical cross-entropy (positives pushed above 0, negatives
below), which needs no class weights for the very sparse positives of span and pair matrices.
Weights are stored like the NER model's: 2-D weights as int8 with one scale per 64 weights (the shipped model,
saved before groups, has one per row; both load).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from ner.chars import CharVocab

CONFIG = "relations.json"
WEIGHTS = "model.safetensors"
VOCAB = "chars.json"
NEG = -1e4  # a score that can never win: masked positions and disallowed predicates


def rotary(x: torch.Tensor) -> torch.Tensor:
    """Rotary position encoding over dim -2 (positions) of ``x [..., L, D]`` (D even)."""
    n, d = x.shape[-2], x.shape[-1]
    freq = 10000.0 ** (-torch.arange(0, d, 2, dtype=torch.float32, device=x.device) / d)
    ang = torch.arange(n, dtype=torch.float32, device=x.device)[:, None] * freq[None]
    cos, sin = ang.cos().to(x.dtype), ang.sin().to(x.dtype)
    x1, x2 = x[..., 0::2], x[..., 1::2]
    return torch.stack((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1).flatten(-2)


def multilabel_ce(scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Sum over rows of log(1 + Σ_neg e^s) + log(1 + Σ_pos e^-s); ``scores, labels [N, K]``; masked
    entries must already hold a very negative score (and label 0)."""
    scores = scores.float()
    labels = labels.float()
    neg = scores - labels * 1e12
    pos = -scores - (1 - labels) * 1e12
    zero = torch.zeros_like(scores[:, :1])
    return (torch.logsumexp(torch.cat([neg, zero], 1), 1) + torch.logsumexp(torch.cat([pos, zero], 1), 1)).sum()


class RelationModel(nn.Module):
    def __init__(self, encoder, types: list[str], predicates: list[str], allowed: torch.Tensor,
                 max_span: int = 32, span_dim: int = 64, ent_dim: int = 256, dropout: float = 0.1):
        super().__init__()
        self.encoder, self.types, self.predicates = encoder, list(types), list(predicates)
        self.max_span, self.span_dim = max_span, span_dim
        hidden = encoder.config.hidden_size
        self.dropout = nn.Dropout(dropout)
        self.span_proj = nn.Linear(hidden, len(types) * 2 * span_dim)
        self.ent_proj = nn.Linear(2 * hidden, ent_dim)
        self.type_emb = nn.Embedding(len(types), 32)
        self.ctx_proj = nn.Linear(hidden, ent_dim)
        self.pair_mlp = nn.Sequential(nn.Linear(4 * ent_dim + 64, 512), nn.GELU(), nn.Dropout(dropout),
                                      nn.Linear(512, len(predicates)))
        self.register_buffer("allowed", allowed.bool(), persistent=False)  # [types, types, predicates]
        self.pairable: list[list[bool]] = allowed.any(-1).tolist()  # [types][types]: some predicate allowed

    def encode(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.encoder(input_ids=ids, attention_mask=mask).last_hidden_state)

    def span_scores(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``[B, types, L, L]``: score of a span from position i to j (inclusive); invalid ones at NEG."""
        b, n, _ = h.shape
        qk = self.span_proj(h).view(b, n, len(self.types), 2, self.span_dim).float()
        q = rotary(qk[..., 0, :].transpose(1, 2))  # [B, T, L, D]
        k = rotary(qk[..., 1, :].transpose(1, 2))
        s = torch.einsum("btid,btjd->btij", q, k) / self.span_dim ** 0.5
        pos = torch.arange(n, device=h.device)
        width = pos[None, :] - pos[:, None]  # j - i
        valid = (width >= 0) & (width < self.max_span)
        m = mask.bool().clone()
        m[:, 0] = False  # CLS
        m = m & (torch.arange(n)[None, :] < mask.sum(1, keepdim=True) - 1)  # SEP
        valid = valid[None, None] & m[:, None, :, None] & m[:, None, None, :]
        return s.masked_fill(~valid, NEG)

    def entity_vectors(self, h: torch.Tensor, mentions: torch.Tensor, owner: torch.Tensor, n_entities: int):
        """Mean over mentions of ``ent_proj([h_first; h_last])``; ``mentions [M, 3]`` = (row, first, last)
        in model positions, ``owner [M]`` = the entity each mention belongs to."""
        v = self.ent_proj(torch.cat([h[mentions[:, 0], mentions[:, 1]], h[mentions[:, 0], mentions[:, 2]]], -1))
        v = v.float()
        total = torch.zeros(n_entities, v.shape[1], device=v.device).index_add_(0, owner, v)
        count = torch.zeros(n_entities, device=v.device).index_add_(0, owner, torch.ones_like(owner, dtype=v.dtype))
        return total / count.clamp(min=1)[:, None]

    def between(self, h: torch.Tensor, spans: torch.Tensor) -> torch.Tensor:
        """``ctx_proj`` of the mean state over positions ``lo..hi-1`` of row ``r``, ``spans [P, 3] = (r, lo, hi)``
        (zeros where the range is empty: adjacent or overlapping arguments)."""
        cs = torch.cat([torch.zeros_like(h[:, :1]), h], 1).float().cumsum(1)  # prefix sums, [B, L + 1, H]
        r, lo, hi = spans.unbind(1)
        mean = (cs[r, hi] - cs[r, lo]) / (hi - lo).clamp(min=1)[:, None]
        return self.ctx_proj(mean).float()

    def pair_scores(self, ents: torch.Tensor, types: torch.Tensor, pairs: torch.Tensor,
                    context: torch.Tensor) -> torch.Tensor:
        """``[P, predicates]`` for ordered entity pairs ``pairs [P, 2]`` with their ``between`` vectors;
        disallowed predicates at NEG."""
        a, b = ents[pairs[:, 0]], ents[pairs[:, 1]]
        ta, tb = types[pairs[:, 0]], types[pairs[:, 1]]
        x = torch.cat([a, b, a * b, context, self.type_emb(ta), self.type_emb(tb)], -1)
        s = self.pair_mlp(x).float()
        return s.masked_fill(~self.allowed[ta, tb], NEG)


def gap(a: list[tuple[int, int]], b: list[tuple[int, int]]) -> tuple[int, int]:
    """The positions strictly between the closest mentions of two arguments, as ``(lo, hi)`` (``lo == hi``
    when they touch or overlap); mentions are (first, last) positions."""
    (a0, a1), (b0, b1) = min(((x, y) for x in a for y in b), key=lambda p: abs(p[0][0] - p[1][0]))
    lo, hi = (a1 + 1, b0) if a0 <= b0 else (b1 + 1, a0)
    return (lo, hi) if hi > lo else (lo, lo)


def allowed_matrix(types: list[str], predicates: list[str], schemas: list[tuple[str, str, str]]) -> torch.Tensor:
    a = torch.zeros(len(types), len(types), len(predicates), dtype=torch.bool)
    ti, pi = {t: i for i, t in enumerate(types)}, {p: i for i, p in enumerate(predicates)}
    for s, p, o in schemas:
        a[ti[s], ti[o], pi[p]] = True
    return a


def build(encoder, schemas: list[tuple[str, str, str]], **kw) -> RelationModel:
    types = sorted({s for s, _, _ in schemas} | {o for _, _, o in schemas})
    predicates = sorted({p for _, p, _ in schemas})
    return RelationModel(encoder, types, predicates, allowed_matrix(types, predicates, schemas), **kw)


def save(model: RelationModel, vocab: CharVocab, out_dir: Path, meta: dict, schemas) -> None:
    from safetensors.torch import save_file

    from ner.model import int8_groups

    out_dir.mkdir(parents=True, exist_ok=True)
    save_file(int8_groups(model.state_dict()), str(out_dir / WEIGHTS), metadata={"format": "medkg-re-int8-groups"})
    model.encoder.config.save_pretrained(out_dir)
    vocab.save(out_dir / VOCAB)
    head = {"max_span": model.max_span, "span_dim": model.span_dim, "ent_dim": model.ent_proj.out_features}
    (out_dir / CONFIG).write_text(json.dumps({**meta, "head": head, "schemas": [list(s) for s in schemas]},
                                             ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def load(model_dir: Path, partial: bool = False) -> tuple[RelationModel, CharVocab, dict]:
    """The stored model; ``partial`` loads only the weights whose names and shapes still fit this network
    (to continue training after a head changed; the rest keep their fresh initialisation)."""
    from safetensors.torch import load_file
    from transformers import BertConfig, BertModel

    from ner.model import from_int8_groups

    meta = json.loads((model_dir / CONFIG).read_text(encoding="utf-8"))
    encoder = BertModel(BertConfig.from_pretrained(model_dir), add_pooling_layer=False)
    model = build(encoder, [tuple(s) for s in meta["schemas"]], **meta["head"])
    state = from_int8_groups(load_file(str(model_dir / WEIGHTS)))
    if partial:
        own = model.state_dict()
        state = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    model.load_state_dict(state, strict=not partial)
    model.eval()
    return model, CharVocab.load(model_dir / VOCAB), meta

"""Strict span scores: a prediction counts only when start, end and type all match a gold span."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable


def prf(tp: int, n_pred: int, n_gold: int) -> dict:
    p = tp / n_pred if n_pred else 0.0
    r = tp / n_gold if n_gold else 0.0
    return {"p": round(p, 4), "r": round(r, 4), "f1": round(2 * p * r / (p + r) if p + r else 0.0, 4),
            "gold": n_gold, "pred": n_pred}


def strict_scores(pairs: Iterable[tuple[Iterable[tuple], Iterable[tuple]]]) -> dict:
    """``pairs`` of (gold spans, predicted spans), each span ``(start, end, type, ...)``: micro and per type, and
    the type confusions on exact spans (:func:`confusions`)."""
    pairs = [(list(g), list(p)) for g, p in pairs]
    tp, pred, gold = Counter(), Counter(), Counter()
    for g, p in pairs:
        g = {tuple(s[:3]) for s in g}
        p = {tuple(s[:3]) for s in p}
        for s in g:
            gold[s[2]] += 1
        for s in p:
            pred[s[2]] += 1
        for s in g & p:
            tp[s[2]] += 1
    types = sorted(set(gold) | set(pred))
    return {"micro": prf(sum(tp.values()), sum(pred.values()), sum(gold.values())),
            "per_type": {t: prf(tp[t], pred[t], gold[t]) for t in types}, "confusions": confusions(pairs)}


def confusions(pairs: Iterable[tuple[Iterable[tuple], Iterable[tuple]]], top: int | None = None) -> list[dict]:
    """Type confusions on exact spans: a gold span whose start and end a prediction matches with another type (and
    that no prediction matches with its own), counted per (gold type, predicted type), most frequent first."""
    n = Counter()
    for g, p in pairs:
        g = {tuple(s[:3]) for s in g}
        by_span: dict[tuple[int, int], set] = {}
        for s in p:
            by_span.setdefault(tuple(s[:2]), set()).add(s[2])
        for s, e, t in g:
            got = by_span.get((s, e), set())
            if t not in got:
                for other in sorted(got):
                    n[(t, other)] += 1
    rows = [{"gold": g, "pred": p, "n": k} for (g, p), k in sorted(n.items(), key=lambda kv: (-kv[1], kv[0]))]
    return rows[:top] if top else rows


def assertion_scores(pairs: Iterable[tuple[Iterable[tuple], Iterable[tuple]]], label: str, status: str) -> dict:
    """P/R/F1 of the mentions of ``label`` whose assertion is ``status`` (e.g. negated symptoms): ``pairs`` of
    (gold, predicted) spans ``(start, end, label, assertion)``; a prediction counts when the span, the label and the
    assertion all match (entity found AND assertion right). ``found``: the gold ones whose span and label were
    found whatever their assertion (what the assertion stage had to work with)."""
    tp = n_pred = n_gold = found = 0
    for g, p in pairs:
        g_st = {tuple(s[:4]) for s in g if s[2] == label and s[3] == status}
        p_st = {tuple(s[:4]) for s in p if s[2] == label and s[3] == status}
        p_all = {tuple(s[:3]) for s in p}
        tp += len(g_st & p_st)
        n_pred += len(p_st)
        n_gold += len(g_st)
        found += sum(1 for s in g_st if s[:3] in p_all)
    return {**prf(tp, n_pred, n_gold), "found": found}

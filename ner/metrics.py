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
    """``pairs`` of (gold spans, predicted spans), each span ``(start, end, type, ...)``: micro and per type."""
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
            "per_type": {t: prf(tp[t], pred[t], gold[t]) for t in types}}

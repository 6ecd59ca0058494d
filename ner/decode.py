"""Decoding that cannot emit an invalid span: Viterbi over BIO tags with ``I-x`` reachable only from
``B-x``/``I-x`` (and never first). Every path it returns is a well-formed sequence of spans."""

from __future__ import annotations

import numpy as np

NEG = -1e9


def allowed_transitions(labels: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(start[L], trans[L, L]) additive masks: 0 where allowed, NEG where not."""
    n = len(labels)
    start, trans = np.zeros(n, np.float32), np.zeros((n, n), np.float32)
    for j, lab in enumerate(labels):
        if lab.startswith("I-"):
            start[j] = NEG
            for i, prev in enumerate(labels):
                if prev[2:] != lab[2:] or prev == "O":
                    trans[i, j] = NEG
    return start, trans


def transition_scores(labels: list[str], learned: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(start, trans) for :func:`viterbi`: the constraint masks, plus a CRF-trained model's learned scores
    (``{"start": [L], "trans": [L][L]}`` from its ``ner.json``, see ``ner.crf``) where it has them."""
    start, trans = allowed_transitions(labels)
    if not learned:
        return start, trans
    return start + np.asarray(learned["start"], np.float32), trans + np.asarray(learned["trans"], np.float32)


def viterbi(logp: np.ndarray, start: np.ndarray, trans: np.ndarray) -> np.ndarray:
    """Best allowed tag path for ``logp`` [n, L] (log-probabilities)."""
    n = len(logp)
    if n == 0:
        return np.zeros(0, np.int64)
    back = np.zeros((n, logp.shape[1]), np.int32)
    score = logp[0] + start
    for t in range(1, n):
        cand = score[:, None] + trans  # [prev, next]
        back[t] = cand.argmax(0)
        score = cand[back[t], np.arange(len(score))] + logp[t]
    path = np.empty(n, np.int64)
    path[-1] = int(score.argmax())
    for t in range(n - 1, 0, -1):
        path[t - 1] = back[t, path[t]]
    return path


def spans(path: np.ndarray, logp: np.ndarray, labels: list[str]) -> list[tuple[int, int, str, float]]:
    """(start, end exclusive, label, confidence) for a valid path; confidence = geometric mean of the
    chosen tags' probabilities over the span."""
    out, s = [], None
    tags = [labels[i] for i in path] + ["O"]
    for i, tag in enumerate(tags):
        if s is not None and not tag.startswith("I-"):
            conf = float(np.exp(logp[np.arange(s, i), path[s:i]].mean()))
            out.append((s, i, tags[s][2:], conf))
            s = None
        if tag.startswith("B-"):
            s = i
    return out

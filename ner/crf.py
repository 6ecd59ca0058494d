"""Linear-chain CRF over a head's BIO emissions, for training: learned start and transition scores on top
of the decoder's hard constraints (``ner.decode.allowed_transitions``), fitted by sequence likelihood.

Decoding needs nothing new: ``ner.decode.transition_scores`` adds the learned scores to the constraint
masks for the same Viterbi (log-softmax shifts each position's emissions by a constant, which leaves the
best path unchanged).
"""

from __future__ import annotations

import torch

from ner.decode import allowed_transitions

HARD = -1e4  # forbidden moves during training: large, yet finite in fp32 sums


def constraints(labels: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    start, trans = allowed_transitions(labels)
    return torch.from_numpy(start).clamp(min=HARD), torch.from_numpy(trans).clamp(min=HARD)


def nll(emissions: torch.Tensor, tags: torch.Tensor, start: torch.Tensor, trans: torch.Tensor) -> torch.Tensor:
    """Summed negative log-likelihood of the gold paths.

    ``emissions`` [B, T, L]; ``tags`` [B, T] with -100 where there is no character (CLS, SEP, padding): each
    row's characters are the run of positions from 1. ``start`` [L] and ``trans`` [L, L] already include the
    hard constraints."""
    e, y = emissions[:, 1:].float(), tags[:, 1:]
    m = y != -100
    y = y.clamp(min=0)
    rows = torch.arange(len(y))
    alpha = start + e[:, 0]
    gold = start[y[:, 0]] + e[rows, 0, y[:, 0]]
    for t in range(1, e.shape[1]):
        on = m[:, t]
        if not on.any():
            break
        alpha = torch.where(on[:, None], torch.logsumexp(alpha[:, :, None] + trans, 1) + e[:, t], alpha)
        gold = gold + on * (trans[y[:, t - 1], y[:, t]] + e[rows, t, y[:, t]])
    return (torch.logsumexp(alpha, 1) - gold).sum()

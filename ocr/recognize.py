"""Text recognition: line crops → text, batched by aspect ratio, CTC greedy decoding."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

Model = Callable[[np.ndarray], np.ndarray]

REC_HEIGHT = 48
MIN_WIDTH = 320  # PP-OCR rec's trained width: narrower batches are padded up to it
WIDTH_BUCKET = 160  # widths are rounded up to multiples of this (measured fastest of 8/64/160)
MAX_WIDTH = 3200  # a 66:1 line; anything longer is squeezed rather than compiled for


# A character read with less than ALT_BELOW probability keeps the recogniser's runner-up for it, when that has
# at least ALT_MIN: a tie between two names one character apart (中晟药费: 中成药费 or 中草药费) is then settled by
# what the recogniser nearly read, not guessed (claims.structure.snap_category).
ALT_BELOW = 0.9
ALT_MIN = 0.02
DECODE_VERSION = "greedy-ctc+runner-up/1"  # part of cache keys of OCR'd pages


@dataclass(frozen=True)
class Recognition:
    text: str
    confidence: float
    alternatives: tuple[tuple[int, str, float], ...] = ()  # (index in text, runner-up character, probability)


def normalise_crop(crop_rgb: np.ndarray, width: int, height: int = REC_HEIGHT) -> np.ndarray:
    """Resize to ``height`` keeping the aspect ratio (capped at ``width``), scale to [-1, 1], pad right with 0."""
    h, w = crop_rgb.shape[:2]
    new_w = min(width, max(1, math.ceil(height * w / max(h, 1))))
    resized = cv2.resize(crop_rgb[:, :, ::-1], (new_w, height), interpolation=cv2.INTER_LINEAR)
    out = np.zeros((3, height, width), dtype=np.float32)
    out[:, :, :new_w] = (resized.astype(np.float32).transpose(2, 0, 1) / 127.5) - 1.0
    return out


def rec_batch_input(crops: Sequence[np.ndarray], height: int = REC_HEIGHT) -> np.ndarray:
    """One NCHW batch whose width fits its widest crop, rounded up to a width bucket (few shapes) and
    capped at MAX_WIDTH (longer lines are squeezed)."""
    ratio = max(c.shape[1] / max(c.shape[0], 1) for c in crops)
    width = min(MAX_WIDTH, max(MIN_WIDTH, math.ceil(height * ratio / WIDTH_BUCKET) * WIDTH_BUCKET))
    return np.stack([normalise_crop(c, width, height) for c in crops])


def pad_batch(x: np.ndarray) -> np.ndarray:
    """Pad the batch dimension to a power of two with empty rows: a few shapes, not one per size."""
    n = len(x)
    size = 1 << (n - 1).bit_length()
    return x if size == n else np.concatenate([x, np.zeros((size - n, *x.shape[1:]), x.dtype)])


def ctc_decode(probs: np.ndarray, charset: Sequence[str]) -> list[Recognition]:
    """Greedy CTC: best class per step, merge repeats, drop blanks (index 0). Confidence = mean kept prob.
    An uncertain character (< ``ALT_BELOW``) also gets its runner-up: the best other non-blank class over the
    steps of its run."""
    best = probs.argmax(axis=2)
    best_p = probs.max(axis=2)
    out = []
    for line, (idx, p) in enumerate(zip(best, best_p)):
        keep = idx != 0
        keep[1:] &= idx[1:] != idx[:-1]
        text: list[str] = []
        alternatives = []
        for t in np.flatnonzero(keep):
            if idx[t] >= len(charset):
                continue
            if p[t] < ALT_BELOW:
                end = t + 1
                while end < len(idx) and idx[end] == idx[t]:
                    end += 1
                row = probs[line, t:end].max(axis=0)
                row[[0, idx[t]]] = 0.0
                j = int(row.argmax())
                if row[j] >= ALT_MIN and j < len(charset):
                    alternatives.append((len(text), charset[j], round(float(row[j]), 3)))
            text.append(charset[idx[t]])
        out.append(Recognition("".join(text), float(p[keep].mean()) if keep.any() else 0.0, tuple(alternatives)))
    return out


class Recognizer:
    """Crops (RGB) → text. Crops are sorted by aspect ratio so each batch pads as little as possible."""

    def __init__(self, model: Model, charset: Sequence[str], batch_size: int = 16):
        self.model, self.charset, self.batch_size = model, list(charset), batch_size

    def __call__(self, crops: Sequence[np.ndarray]) -> list[Recognition]:
        order = sorted(range(len(crops)), key=lambda i: crops[i].shape[1] / max(crops[i].shape[0], 1))
        results: list[Recognition | None] = [None] * len(crops)
        for start in range(0, len(order), self.batch_size):
            chunk = order[start:start + self.batch_size]
            probs = self.model(pad_batch(rec_batch_input([crops[i] for i in chunk])))[: len(chunk)]
            for i, rec in zip(chunk, ctc_decode(probs, self.charset)):
                results[i] = rec
        return results  # type: ignore[return-value]


def charset_from_model(character_list: str) -> list[str]:
    """PP-OCR's list (from the ONNX metadata key ``character``) plus the CTC blank first and a space last."""
    return ["<blank>", *character_list.splitlines(), " "]

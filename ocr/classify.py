"""Text direction: is a line crop upright (0°) or upside down (180°)?"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ocr.recognize import normalise_crop, pad_batch

Model = Callable[[np.ndarray], np.ndarray]

CLS_HEIGHT, CLS_WIDTH = 48, 192


class DirectionClassifier:
    """Crops (RGB) → probability that each is upside down."""

    def __init__(self, model: Model, batch_size: int = 32):
        self.model, self.batch_size = model, batch_size

    def __call__(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        p180 = np.zeros(len(crops), dtype=np.float32)
        for start in range(0, len(crops), self.batch_size):
            chunk = crops[start:start + self.batch_size]
            # long lines are squeezed into the classifier's fixed 192 px width, as it was trained
            x = np.stack([normalise_crop(c, CLS_WIDTH, CLS_HEIGHT) for c in chunk])
            p180[start:start + len(chunk)] = self.model(pad_batch(x))[: len(chunk), 1]
        return p180

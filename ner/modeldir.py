"""A trained NER model directory: its file names and what can be read from it without torch.

``ner.json`` (schemes and their BIO labels, training record), ``chars.json`` (the character vocabulary),
``config.json`` (the encoder's) and ``model.safetensors`` (weights, see ``ner.model``). Kept free of torch so
a worker that runs a cached OpenVINO model never imports it (seconds of start-up per worker).
"""

from __future__ import annotations

import json
from pathlib import Path

from ner.chars import CharVocab
from ner.schema import SCHEMES

CONFIG = "ner.json"
WEIGHTS = "model.safetensors"
CHECKPOINT = "checkpoint.safetensors"  # fp32 weights a training run leaves beside WEIGHTS
VOCAB = "chars.json"


def load_meta(model_dir: Path) -> tuple[CharVocab, dict]:
    meta = json.loads((model_dir / CONFIG).read_text(encoding="utf-8"))
    unknown = set(meta["schemes"]) - set(SCHEMES)
    if unknown:
        raise ValueError(f"{model_dir}: unknown schemes {sorted(unknown)}")
    return CharVocab.load(model_dir / VOCAB), meta

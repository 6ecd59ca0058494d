"""NER inference backends behind one call shape: ``backend(ids, mask) -> {scheme: logits [B, T, L]}``.

torch: FP32, BF16 autocast (only where the CPU has native BF16: elsewhere it is emulated and ~8x slower)
and dynamic INT8 (``Linear`` layers). The precision policy (``core.precision.choose_ner_backend``)
picks one per machine (OpenVINO: ``ner.openvino_backend``).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

SHIPPED = Path(__file__).resolve().parents[1] / "models" / "ner"


def resolve_model_dir(model_dir: str | Path | None = None) -> Path:
    """The model to use: the argument, else ``MEDKG_NER_MODEL``, else the one shipped in ``models/ner``."""
    path = Path(model_dir or os.environ.get("MEDKG_NER_MODEL") or SHIPPED)
    if not (path / "ner.json").is_file():
        raise FileNotFoundError(f"no NER model in {path} (expected ner.json; train one with `medkg ner train`)")
    return path


def pad32(width: int) -> int:
    """Input widths rounded up to a multiple of 32: few distinct shapes, so runtimes build few kernel sets."""
    return -(-width // 32) * 32


class TorchBackend:
    """The model in torch at ``fp32``, ``bf16`` (autocast) or ``int8`` (dynamic quantisation)."""

    def __init__(self, model, precision: str = "fp32", threads: int | None = None):
        import torch

        if threads:
            torch.set_num_threads(threads)
        if precision == "int8":
            model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
        elif precision not in ("fp32", "bf16"):
            raise ValueError(f"torch backend: unknown precision {precision!r}")
        self.model, self.precision, self.name = model.eval(), precision, f"torch-{precision}"

    def pad_to(self, width: int) -> int:
        return pad32(width)

    def __call__(self, ids: np.ndarray, mask: np.ndarray) -> dict[str, np.ndarray]:
        import torch

        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.precision == "bf16"):
            out = self.model(torch.from_numpy(ids), torch.from_numpy(mask))
        return {k: v.float().numpy() for k, v in out.items()}


def open_backend(get_model, backend: str | None = None, model_dir: Path | None = None, calibration=None,
                 schemes: list[str] | None = None):
    """``backend`` is ``<runtime>-<precision>`` (e.g. ``openvino-bf16``) or None / ``auto`` for the policy.

    ``get_model()`` gives the torch NerModel; it is not called when a converted OpenVINO model is cached,
    so such a worker never imports torch.
    """
    from core.hardware import probe
    from core.precision import choose_ner_backend
    from core.settings import get_settings

    threads = get_settings().inference_threads()
    choice = backend if backend not in (None, "auto") else choose_ner_backend(probe()).precision
    runtime, _, precision = choice.partition("-")
    precision = precision or "fp32"
    if runtime == "torch":
        return TorchBackend(get_model(), precision, threads=threads)
    if runtime == "openvino":
        from ner.openvino_backend import OpenVinoBackend, cached_ir

        xml = cached_ir(model_dir, precision, calibration)
        model = None if xml is not None and xml.is_file() and schemes else get_model()
        return OpenVinoBackend(model, precision, model_dir=model_dir, threads=threads, calibration=calibration,
                               schemes=schemes)
    raise ValueError(f"unknown NER backend {choice!r} (torch-fp32|torch-bf16|torch-int8|openvino-fp32|openvino-int8"
                     "|openvino-bf16)")

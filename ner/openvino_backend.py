"""The NER model on OpenVINO: FP32, BF16 (only where the CPU executes it) and INT8.

INT8 is nncf static quantisation (activations and weights) when calibration batches are given, else
data-free weight-only INT8 (``nncf.compress_weights``), named ``int8w`` so nobody mistakes one for the
other. Converted models are cached per weights file under ``<models>/ner-ov/``; input widths are padded
to multiples of 32 so the CPU plugin compiles a handful of shapes, not one per length (measured on OCR:
one kernel set per shape grows memory without bound).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from core.modelstore import sha256_file
from ner.backends import pad32
from ner.modeldir import WEIGHTS


def _logits_module(model):
    """NerModel returning a tuple (in scheme order): what ``ov.convert_model`` traces cleanly."""
    import torch

    class Logits(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.m = model

        def forward(self, input_ids, attention_mask):
            out = self.m(input_ids, attention_mask)
            return tuple(out[s] for s in self.m.schemes)

    return Logits().eval()


def ir_kind(precision: str, calibration=None) -> str:
    """The converted graph a precision runs: BF16 compiles the FP32 graph; INT8 is static or weight-only."""
    return "fp32" if precision != "int8" else ("int8" if calibration else "int8w")


def cached_ir(model_dir: Path | None, precision: str, calibration=None) -> Path | None:
    """Where the converted model for ``model_dir`` at this precision is cached (None for in-memory models)."""
    from core.settings import get_settings

    if model_dir is None:
        return None
    return get_settings().models / "ner-ov" / sha256_file(model_dir / WEIGHTS)[:16] / f"{ir_kind(precision, calibration)}.xml"


class OpenVinoBackend:
    def __init__(self, model, precision: str = "fp32", model_dir: Path | None = None, threads: int = 0,
                 calibration: list[tuple[np.ndarray, np.ndarray]] | None = None, schemes: list[str] | None = None):
        """``model`` (a NerModel) may be None when ``cached_ir`` exists; ``schemes`` then name the outputs."""
        import openvino as ov

        from core.inference import compile_config, executed_precision, ov_core

        if precision not in ("fp32", "bf16", "int8"):
            raise ValueError(f"openvino backend: unknown precision {precision!r}")
        self.schemes = list(schemes or model.schemes)
        xml = cached_ir(model_dir, precision, calibration)
        kind = ir_kind(precision, calibration)
        t0 = time.perf_counter()
        if xml is None or not xml.is_file():
            if model is None:
                raise ValueError("no cached OpenVINO model: the NER model itself is needed to convert")
            ov_model = self._convert(model)
            if kind == "int8":
                import nncf

                ov_model = nncf.quantize(ov_model, nncf.Dataset(calibration, lambda b: {"input_ids": b[0],
                                                                                      "attention_mask": b[1]}),
                                         model_type=nncf.ModelType.TRANSFORMER, subset_size=len(calibration))
            elif kind == "int8w":
                import nncf

                ov_model = nncf.compress_weights(ov_model, mode=nncf.CompressWeightsMode.INT8_ASYM)
            if xml is not None:
                xml.parent.mkdir(parents=True, exist_ok=True)
                ov.save_model(ov_model, str(xml), compress_to_fp16=False)
        else:
            ov_model = ov_core().read_model(str(xml))
        self.convert_s = time.perf_counter() - t0
        self.compiled = ov_core().compile_model(ov_model, "CPU", compile_config(precision, threads or 1))
        self.request = self.compiled.create_infer_request()
        self.executes = executed_precision(self.compiled)
        self.precision, self.name = precision, f"openvino-{kind if precision == 'int8' else precision}"

    @staticmethod
    def _convert(model):
        import openvino as ov
        import torch

        ids = torch.ones((2, 34), dtype=torch.long)
        return ov.convert_model(_logits_module(model), example_input=(ids, ids),
                                input=[("input_ids", [-1, -1], ov.Type.i64), ("attention_mask", [-1, -1], ov.Type.i64)])

    def pad_to(self, width: int) -> int:
        return pad32(width)

    def __call__(self, ids: np.ndarray, mask: np.ndarray) -> dict[str, np.ndarray]:
        res = self.request.infer({"input_ids": ids, "attention_mask": mask})
        return {s: np.array(res[i], copy=True) for i, s in enumerate(self.schemes)}

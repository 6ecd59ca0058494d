"""OpenVINO inference with explicit threads, streams and precision, and the precision read back.

OpenVINO silently ignores a BF16 hint on a CPU without BF16, and on AMX machines it *defaults* to BF16:
so the hint is always set explicitly, and what the compiled graph really executes is read from its
runtime model, never assumed from the hint.
"""

from __future__ import annotations

import time
from collections import Counter
from functools import lru_cache
from pathlib import Path
from typing import Protocol

import numpy as np
import openvino as ov

from core.hardware import probe

# runtimePrecision values OpenVINO's CPU plugin reports per executed node
_INT8 = {"i8", "u8"}
_BF16 = {"bf16"}
_HEAVY = {"Convolution", "Deconvolution", "FullyConnected", "MatMul"}


@lru_cache(maxsize=1)
def ov_core() -> ov.Core:
    return ov.Core()


def compile_config(precision: str, threads: int) -> dict:
    """The inference precision hint is always explicit.

    ``fp32`` means FP32 everywhere. ``bf16`` runs the FP32 graph in BF16. ``int8`` runs the quantized
    layers in INT8 and the rest in BF16 where the CPU executes BF16 natively (AMX / AVX-512 BF16: measured
    1.3-1.6x faster for rec than INT8 with FP32 around it), else in FP32. prepare's accuracy check runs
    under this same configuration, so INT8's check covers what really executes.
    """
    hint = "bf16" if precision == "bf16" or (precision == "int8" and probe().native_bf16) else "f32"
    return {
        "INFERENCE_PRECISION_HINT": hint,
        "INFERENCE_NUM_THREADS": int(threads),
        "NUM_STREAMS": 1,
        "PERFORMANCE_HINT": "LATENCY",
        "ENABLE_CPU_PINNING": False,  # shared machines: pinning fights other processes for the same cores
    }


class InferenceModel(Protocol):
    """What the OCR stages need of a model: call it on a batch; know what it executes."""

    compile_s: float
    executes: str

    def __call__(self, x: np.ndarray) -> np.ndarray: ...


class OvModel:
    """One compiled model with one inference request: callable, not thread-safe (one per worker)."""

    def __init__(self, path: Path | str, precision: str, threads: int):
        self.path, self.precision = Path(path), precision
        start = time.perf_counter()
        self.compiled = ov_core().compile_model(str(path), "CPU", compile_config(precision, threads))
        self.compile_s = time.perf_counter() - start
        self.request = self.compiled.create_infer_request()
        self.executes = executed_precision(self.compiled)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        result = self.request.infer({0: np.ascontiguousarray(x, dtype=np.float32)})
        return np.array(result[0], copy=True)  # the request reuses its output buffer on the next call


def runtime_precisions(compiled: ov.CompiledModel) -> Counter:
    counts: Counter = Counter()
    for op in compiled.get_runtime_model().get_ops():
        rt = op.get_rt_info()
        if "runtimePrecision" in rt and rt["layerType"].astype(str) in _HEAVY:
            counts[rt["runtimePrecision"].astype(str).lower()] += 1
    return counts


def executed_precision(compiled: ov.CompiledModel) -> str:
    """What the heavy layers (convolutions, matmuls) really run in: int8, int8+bf16, bf16 or f32."""
    counts = runtime_precisions(compiled)
    int8, bf16 = sum(counts[p] for p in _INT8), sum(counts[p] for p in _BF16)
    if int8:
        return "int8+bf16" if bf16 else "int8"
    return "bf16" if bf16 else "f32"

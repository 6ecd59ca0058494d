"""OCR speed and accuracy, every variant on the same rendered pages in one process, interleaved.

Variants: (a) OpenVINO INT8, (b) OpenVINO FP32 (hint forced to f32), (c) the same FP32 ONNX files in
onnxruntime recognising one crop at a time (the way a plain script runs them), and (d) OpenVINO BF16 when
the CPU executes BF16 natively. Pages are processed round-robin across variants so machine noise hits all
of them alike. Prints one JSON object.

    .venv/bin/python benchmarks/ocr.py [--pages 50] [--generation ppocrv4|ppocrv6]
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a file, this folder would shadow the `ocr` package
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import argparse
import json
import resource
import time
from collections import defaultdict

import numpy as np
import psutil

from core.hardware import probe
from core.inference import OvModel
from core.settings import get_settings
from ocr.evaluate import CharScore, score_page
from ocr.models import GENERATIONS, OcrModels, artifact_file, read_charset
from ocr.pipeline import OcrEngine
from ocr.synth import render_page

BENCH_SEEDS = 5000  # disjoint from calibration (1000+) and the INT8 check (2000+)


class OrtModel:
    """onnxruntime session with the same threads; the baseline's engine."""

    def __init__(self, path: Path, threads: int):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
        start = time.perf_counter()
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        self.compile_s = time.perf_counter() - start
        self.input = self.session.get_inputs()[0].name
        self.executes = "f32"

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input: x.astype(np.float32)})[0]


def _rss_mb() -> float:
    return psutil.Process().memory_info().rss / 2**20


def build_variants(generation: str, threads: int) -> dict[str, tuple[OcrEngine, float, float]]:
    """name -> (engine, compile seconds, RSS growth in MiB while loading)."""
    s = get_settings()
    srcs = GENERATIONS[generation]
    charset = read_charset(artifact_file(srcs["rec"].name, "fp32", s.models))
    plans = {"openvino_int8": "int8", "openvino_fp32": "fp32"}
    if "BF16" in probe().openvino_capabilities and probe().native_bf16:
        plans["openvino_bf16"] = "bf16"
    variants = {}
    for name, precision in plans.items():
        before = _rss_mb()
        models = {}
        for task, src in srcs.items():
            p = precision if src.quantize or precision == "bf16" else "fp32"
            models[task] = OvModel(artifact_file(src.name, "int8" if p == "int8" else "fp32", s.models), p, threads)
        ocr_models = OcrModels(generation, models["det"], models["cls"], models["rec"], charset, {})
        variants[name] = (OcrEngine(ocr_models, s), sum(m.compile_s for m in models.values()), _rss_mb() - before)
    before = _rss_mb()
    ort = {t: OrtModel(s.models / src.name / "onnx" / "model.onnx", threads) for t, src in srcs.items()}
    one_at_a_time = s.model_copy(update={"ocr_rec_batch": 1})
    ort_models = OcrModels(generation, ort["det"], ort["cls"], ort["rec"], charset, {})
    engine = OcrEngine(ort_models, one_at_a_time)
    engine.classifier.batch_size = 1
    variants["onnxruntime_fp32_one_crop"] = (engine, sum(m.compile_s for m in ort.values()), _rss_mb() - before)
    return variants


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pages", type=int, default=50)
    ap.add_argument("--generation", default=get_settings().ocr_models, choices=sorted(GENERATIONS))
    args = ap.parse_args()
    threads = get_settings().inference_threads()

    pages = [render_page(BENCH_SEEDS + i) for i in range(args.pages)]
    variants = build_variants(args.generation, threads)
    names = list(variants)
    seconds: dict[str, float] = defaultdict(float)
    scores: dict[str, CharScore] = defaultdict(CharScore)
    for name, (engine, *_ ) in variants.items():  # warm-up: first inference allocates and tunes kernels
        engine.read_image(pages[0].image)
    for i, page in enumerate(pages):
        truth = [(line.text, np.array(line.box)) for line in page.lines]
        h, w = page.image.shape[:2]
        for name in names[i % len(names):] + names[: i % len(names)]:  # rotate who goes first
            engine = variants[name][0]
            start = time.perf_counter()
            result = engine.read_image(page.image)
            seconds[name] += time.perf_counter() - start
            scores[name] += score_page(result.lines, truth, truth_size=(w, h), rotation=result.rotation)

    out_variants = {}
    for name, (engine, compile_s, rss_growth) in variants.items():
        out_variants[name] = {
            "pages_per_s": round(len(pages) / seconds[name], 3),
            "ms_per_page": round(1000 * seconds[name] / len(pages), 1),
            "char_accuracy": round(scores[name].accuracy, 5),
            "exact_lines": round(scores[name].exact_lines / max(scores[name].lines, 1), 4),
            "compile_s": round(compile_s, 3),
            "rss_growth_on_load_mib": round(rss_growth, 1),
            "executes": {t: getattr(engine.models, t).executes for t in ("det", "cls", "rec")},
        }
    int8, fp32 = out_variants["openvino_int8"], out_variants["openvino_fp32"]
    ort = out_variants["onnxruntime_fp32_one_crop"]
    hw = probe()
    print(json.dumps({
        "benchmark": "ocr",
        "data": f"{len(pages)} rendered bills (ocr.synth seeds {BENCH_SEEDS}-{BENCH_SEEDS + len(pages) - 1}, degraded)",
        "generation": args.generation,
        "threads": threads,
        "cpu": {"model": hw.cpu_model, "isa": hw.isa_summary},
        "chars": scores[names[0]].chars,
        "variants": out_variants,
        "speedup_int8_vs_openvino_fp32": round(int8["pages_per_s"] / fp32["pages_per_s"], 3),
        "speedup_int8_vs_onnxruntime_one_crop": round(int8["pages_per_s"] / ort["pages_per_s"], 3),
        "accuracy_drop_int8_vs_fp32_points": round(100 * (fp32["char_accuracy"] - int8["char_accuracy"]), 3),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }, ensure_ascii=False))


if __name__ == "__main__":
    main()

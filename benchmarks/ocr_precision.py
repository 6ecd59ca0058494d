"""The recogniser's precision on real print: OCR character accuracy on our transcribed printed lines of the real
*tuning* bills (benchmarks/real_bills/README.md), with the same detection and the same crops for every variant and
only the recogniser changed: as the policy loaded it, the INT8 artifact (what CPUs without AMX run where its check
passed; on a CPU with native BF16 also with its unquantized layers in FP32, as CPUs without BF16 run them), BF16
(where the CPU runs it natively) and FP32. The time each took to recognise the crops is beside its accuracy.
Prints one JSON object (saved to benchmarks/results/ocr_precision.json unless --no-save).

INT8 passed its build check on rendered and real-like pages (a drop of at most 0.2 points on each); this measures
what it costs on real scans (docs/real-bills.md, fifth and seventh rounds). ``MEDKG_MODELS`` points it at another build.

    .venv/bin/python benchmarks/ocr_precision.py [--no-save]
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make the project importable
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import argparse
import time

from benchmarks.bills_real import cpu_name, publish, skip_without_real_bills, texts_accuracy, tuning_crops

RESULT = Path(__file__).resolve().parent / "results" / "ocr_precision.json"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-save", action="store_true")
    args = ap.parse_args()
    if skip_without_real_bills("ocr_precision"):
        return

    from core.hardware import probe
    from core.inference import OvModel
    from ocr.models import GENERATIONS, artifact_file
    from ocr.pipeline import OcrEngine
    from ocr.recognize import Recognizer

    engine = OcrEngine.load()
    s, hw = engine.settings, probe()
    rec_name, root = GENERATIONS[s.ocr_models]["rec"].name, s.models.expanduser()
    fp32_ir, int8_ir = artifact_file(rec_name, "fp32", root), artifact_file(rec_name, "int8", root)
    recognisers = {"as_loaded": engine.recognizer}
    native_bf16 = "BF16" in hw.openvino_capabilities and hw.native_bf16
    # (variant, IR, precision hint): on a CPU with native BF16 the INT8 artifact runs its unquantized layers in BF16;
    # "int8_fp32_rest" runs them in FP32 under an f32 hint, as CPUs without BF16 (the ones that run INT8 OCR) do
    variants = [("int8", int8_ir, "int8"), ("int8_fp32_rest", int8_ir, "fp32"), ("bf16", fp32_ir, "bf16"),
                ("fp32", fp32_ir, "fp32")]
    for variant, ir, hint in variants:
        if (variant in ("bf16", "int8_fp32_rest") and not native_bf16) or not ir.is_file():
            continue  # without native BF16 OpenVINO would run FP32 under a BF16 hint, and int8 is int8_fp32_rest
        model = OvModel(ir, hint, s.inference_threads())
        recognisers[variant] = Recognizer(model, engine.models.charset, batch_size=s.ocr_rec_batch)
    totals = {v: [0, 0, 0.0, 0] for v in recognisers}  # errors, characters, seconds recognising, crops as FP32
    n_crops = 0
    start = time.perf_counter()
    for _, lines, crops in tuning_crops(engine):
        texts = {}
        for variant, recognise in recognisers.items():
            t0 = time.perf_counter()
            texts[variant] = [r.text for r in recognise(crops)]
            totals[variant][2] += time.perf_counter() - t0
            errors, chars = texts_accuracy(texts[variant], lines)
            totals[variant][0] += errors
            totals[variant][1] += chars
        for variant, got in texts.items():  # how often a crop reads exactly as FP32 reads it
            totals[variant][3] += sum(a == b for a, b in zip(got, texts["fp32"]))
        n_crops += len(crops)
    out = {
        "benchmark": "ocr_precision",
        "data": "real tuning bills (benchmarks/real_bills/README.md), our transcribed printed lines",
        "command": "python benchmarks/ocr_precision.py",
        "cpu": {"model": cpu_name(), "isa": hw.isa_summary},
        "generation": s.ocr_models,
        "int8_built": _int8_recipe(rec_name, root),
        "detection": engine.models.det.executes,
        "crops": n_crops,
        "recognisers": {v: {"executes": r.model.executes, "char_accuracy": round(1 - e / max(c, 1), 4), "chars": c,
                            "recognition_s": round(sec, 2), "crops_read_as_fp32": round(same / max(n_crops, 1), 3)}
                        for (v, r), (e, c, sec, same) in zip(recognisers.items(), totals.values())},
        "seconds": round(time.perf_counter() - start, 1),
    }
    publish(out, RESULT, save=not args.no_save)


def _int8_recipe(rec_name: str, root: Path) -> dict | None:
    """How the INT8 recogniser measured here was built: its recipe, calibration data and accuracy check."""
    from core.modelstore import read_manifest

    m = read_manifest(rec_name, root)
    if m is None or m.calibration is None:
        return None
    return {"recipe": m.extra.get("recipe"), "calibration": m.calibration.get("data"),
            "check_passed": m.check.passed if m.check else None}


if __name__ == "__main__":
    main()

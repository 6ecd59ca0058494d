"""The precision policy: which precision each model runs at on this machine, and why.

Decisions rest on measured facts (the CPU's flags, OpenVINO's capabilities, and the accuracy check
recorded in the model's manifest), never on a hint alone.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.hardware import Hardware
from core.modelstore import Manifest


@dataclass(frozen=True)
class Decision:
    precision: str  # int8 | bf16 | fp32
    reason: str


# benchmarks/ocr.py and benchmarks/ocr_precision.py on the Xeon (AMX), 2 threads: why AMX runs OCR in BF16
AMX_BF16_EVIDENCE = ("BF16 is at least as fast as INT8 on AMX (whole pages, PP-OCRv6 770 vs 935 ms, PP-OCRv4 2.43 vs "
                     "2.41 pages/s; benchmarks/ocr.py) and reads real receipts' lines as FP32 does (character "
                     "accuracy 0.974 both; benchmarks/ocr_precision.py)")
# the same two benchmarks and benchmarks/bills_real.py on an AMD EPYC (Zen 4: AVX-512 BF16 + VNNI, no AMX), 2 threads:
# why such a CPU runs OCR in BF16 too. Decided on the tuning bills and the development sets; the untouched bills, read
# afterwards, did not confirm the header gain (items equal, header 0.761 vs 0.795, characters 0.991 vs 0.984):
# docs/real-bills.md, sixteenth round
AVX512_BF16_EVIDENCE = ("BF16 takes 1.08x INT8's time on whole pages (1442 vs 1330 ms; benchmarks/ocr.py), reads "
                        "real receipts' lines as FP32 does (characters 0.986 both, INT8 0.983; "
                        "benchmarks/ocr_precision.py), and their header fields as FP32 does where the INT8 "
                        "recogniser lost 3 of 74 on the real tuning bills (0.932 vs 0.973; benchmarks/bills_real.py)")


def choose_ocr_precision(manifest: Manifest | None, hw: Hardware, requested: str = "auto") -> Decision:
    """BF16 where the CPU executes it natively (AMX, or AVX-512 BF16 without AMX): about as fast as INT8 there
    (faster on AMX, 1.08x its time on Zen 4) and reading real print as FP32 does, where the INT8 recogniser misreads
    more; elsewhere INT8 (the fastest on AVX2 and VNNI CPUs) within its accuracy check, else FP32."""
    has_bf16 = "BF16" in hw.openvino_capabilities and hw.native_bf16
    if requested == "auto" and has_bf16:
        return Decision("bf16", f"{hw.isa_summary}: {AMX_BF16_EVIDENCE if hw.amx else AVX512_BF16_EVIDENCE}")
    if requested == "fp32":
        return Decision("fp32", "FP32 requested")
    if requested == "bf16":
        if has_bf16:
            return Decision("bf16", f"BF16 requested; the CPU executes it natively ({hw.isa_summary})")
        return Decision("fp32", "BF16 requested but this CPU has no native BF16 (OpenVINO would ignore the hint)")
    check = manifest.check if manifest else None
    if manifest is None or "int8" not in manifest.artifacts:
        return Decision("fp32", "no INT8 artifact built (run `medkg models prepare`)")
    if requested == "int8":
        verdict = "passed" if check and check.passed else "FAILED"
        return Decision("int8", f"INT8 requested (its accuracy check {verdict})")
    if check and check.passed:
        drop = check.reference - check.value
        engine = "AMX-INT8" if hw.amx else "VNNI" if hw.vnni else "AVX2"
        return Decision("int8", f"INT8 within tolerance on {check.data}: {check.metric} {check.value:.4f} vs FP32 "
                                f"{check.reference:.4f} (drop {drop:+.4f} ≤ {check.tolerance}); {engine} kernels")
    if check:
        return Decision("fp32", f"INT8 missed its accuracy tolerance ({check.metric} {check.value:.4f} vs FP32 "
                                f"{check.reference:.4f}, tolerance {check.tolerance})")
    return Decision("fp32", "INT8 artifact has no accuracy check recorded")


def choose_ner_backend(hw: Hardware) -> Decision:
    """NER/RE encoder backend, from benchmarks/ner.py (README, "Clinical NER"): OpenVINO beat torch at every
    precision here, and dynamic torch INT8 lost F1 beyond the 0.5-point tolerance, so it is never chosen."""
    if hw.native_bf16 and "BF16" in hw.openvino_capabilities:
        return Decision("openvino-bf16", f"native BF16 ({hw.isa_summary}): OpenVINO BF16 measured fastest, F1 within "
                                         "0.5 points of FP32 on the Yidu-S4K test set")
    if hw.vnni:
        return Decision("openvino-int8", f"{hw.isa_summary} without native BF16: OpenVINO weight-only INT8 (data-free; "
                                         "F1 equal to FP32 where measured)")
    return Decision("openvino-fp32", f"{hw.isa_summary}: no INT8/BF16 hardware path; OpenVINO FP32 (torch dynamic "
                                     "INT8 is faster on AVX2 but lost F1 beyond the 0.5-point tolerance)")


def choose_re_precision(hw: Hardware) -> Decision:
    """Relation model (torch: its span and pair heads are dynamic per text). BF16 autocast only where the CPU
    runs it natively (emulated BF16 is ~8x slower); FP32 elsewhere: dynamic INT8 is measured by
    benchmarks/relations.py and chosen only within its F1 tolerance (README, "Relations")."""
    if hw.native_bf16:
        return Decision("bf16", f"native BF16 ({hw.isa_summary}): torch BF16 autocast (oneDNN AMX kernels)")
    return Decision("fp32", f"{hw.isa_summary}: no native BF16; torch FP32")

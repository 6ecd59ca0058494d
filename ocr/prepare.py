"""Build the OCR model artifacts offline: ONNX from the installed wheels → OpenVINO IR FP32 → INT8 (nncf).

INT8 is calibrated on rendered bills and checked end to end on a separate set of rendered bills: the
manifest records both, and the precision policy uses INT8 only if the check passed. Re-running is cheap:
a model whose source, recipe and files are unchanged is left alone.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import openvino as ov

from core.modelstore import (AccuracyCheck, Artifact, Manifest, artifact_intact, model_path, read_manifest,
                             sha256_file, write_manifest)
from core.settings import Settings
from ocr.engine import OvModel
from ocr.evaluate import CharScore, score_page
from ocr.models import GENERATIONS, LICENCE, OcrModels, SourceModel, artifact_file, locate_source, read_charset
from ocr.pipeline import OcrEngine
from ocr.synth import RenderedPage, render_page

log = logging.getLogger(__name__)

RECIPE = "ocr-prepare/2"  # bump when conversion, calibration or check changes
CALIBRATION_SEEDS = range(1000, 1050)  # 50 rendered bills
CHECK_SEEDS = range(2000, 2020)  # 20 other rendered bills, never used for calibration
REC_CALIBRATION_CROPS = 300
TOLERANCE = 0.002  # largest drop in character accuracy an INT8 model may cost (0.2 points)


def _pages(seeds: range) -> list[RenderedPage]:
    return [render_page(s) for s in seeds]


def _det_samples(pages: list[RenderedPage], settings: Settings) -> list[np.ndarray]:
    from ocr.detect import det_input

    return [det_input(p.image, settings.ocr_det_max_side)[0] for p in pages]


def _rec_samples(pages: list[RenderedPage], limit: int) -> list[np.ndarray]:
    from ocr.geometry import crop_quad, order_clockwise
    from ocr.recognize import rec_batch_input

    rng = np.random.default_rng(0)
    crops = [crop_quad(p.image, order_clockwise(np.array(line.box))) for p in pages for line in p.lines]
    picked = rng.choice(len(crops), size=min(limit, len(crops)), replace=False)
    return [rec_batch_input([crops[i]]) for i in sorted(picked)]


def _quantize(fp32_xml: Path, samples: list[np.ndarray], out_xml: Path, task: str) -> dict:
    """nncf post-training INT8. For rec, the transformer (SVTR) blocks get nncf's transformer scheme and
    the classification head stays FP32: quantizing the head's input costs 0.3-0.5 points of character
    accuracy (similar characters differ by small logit margins); keeping it costs almost nothing."""
    import nncf  # heavy import, only needed here

    model = ov.Core().read_model(str(fp32_xml))
    options: dict = {"preset": nncf.QuantizationPreset.PERFORMANCE}
    if task == "rec":
        head = [op.get_friendly_name() for op in model.get_ordered_ops() if op.get_type_name() == "MatMul"][-1:]
        options = {"model_type": nncf.ModelType.TRANSFORMER, "ignored_scope": nncf.IgnoredScope(names=head)}
    quantized = nncf.quantize(model, nncf.Dataset(samples), subset_size=len(samples), **options)
    out_xml.parent.mkdir(parents=True, exist_ok=True)
    ov.save_model(quantized, str(out_xml), compress_to_fp16=False)
    return {k: str(v) for k, v in options.items()}


def end_to_end_accuracy(models: OcrModels, pages: list[RenderedPage], settings: Settings) -> float:
    engine = OcrEngine(models, settings)
    total = CharScore()
    for page in pages:
        result = engine.read_image(page.image)
        truth = [(line.text, np.array(line.box)) for line in page.lines]
        h, w = page.image.shape[:2]
        total += score_page(result.lines, truth, truth_size=(w, h), rotation=result.rotation)
    return total.accuracy


def _compile_set(generation: str, override: dict[str, OvModel], root: Path, threads: int) -> OcrModels:
    srcs = GENERATIONS[generation]
    models = {t: override.get(t) or OvModel(artifact_file(s.name, "fp32", root), "fp32", threads) for t, s in srcs.items()}
    charset = read_charset(artifact_file(srcs["rec"].name, "fp32", root))
    return OcrModels(generation, models["det"], models["cls"], models["rec"], charset, {})


def _files(folder: Path, root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): sha256_file(p) for p in sorted(folder.iterdir()) if p.is_file()}


def _convert(onnx: Path, folder: Path) -> None:
    (folder / "onnx").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(onnx, folder / "onnx" / "model.onnx")  # kept for users and for the onnxruntime baseline
    ov.save_model(ov.convert_model(str(onnx)), str(folder / "fp32" / "model.xml"), compress_to_fp16=False)


def prepare_generation(generation: str, settings: Settings, *, force: bool = False,
                       report: Callable[[str], None] = print) -> list[Manifest]:
    """Convert every model of the generation to FP32 IR, then quantize and check det and rec."""
    root = settings.models.expanduser()
    threads = settings.inference_threads()
    manifests: dict[str, Manifest] = {}
    todo: list[tuple[str, SourceModel, str, str, float]] = []  # task, source, version, sha256, convert seconds
    for task, src in GENERATIONS[generation].items():
        onnx, version = locate_source(src)
        source_sha = sha256_file(onnx)
        old = read_manifest(src.name, root)
        wanted = ["fp32", "int8"] if src.quantize else ["fp32"]
        if (not force and old and old.source_sha256 == source_sha and old.extra.get("recipe") == RECIPE
                and all(artifact_intact(old, p, root) for p in wanted)):
            report(f"{src.name}: up to date")
            manifests[task] = old
            continue
        folder = model_path(src.name, root)
        shutil.rmtree(folder, ignore_errors=True)
        started = time.perf_counter()
        _convert(onnx, folder)
        todo.append((task, src, version, source_sha, time.perf_counter() - started))

    calibration = check = None
    reference: float | None = None
    for task, src, version, source_sha, convert_s in todo:
        started = time.perf_counter() - convert_s
        folder = model_path(src.name, root)
        artifacts = {"fp32": Artifact(precision="fp32", files=_files(folder / "fp32", folder))}
        calib_info, acc = None, None
        if src.quantize:
            calibration = calibration or _pages(CALIBRATION_SEEDS)
            check = check or _pages(CHECK_SEEDS)
            samples = (_det_samples(calibration, settings) if task == "det"
                       else _rec_samples(calibration, REC_CALIBRATION_CROPS))
            options = _quantize(folder / "fp32" / "model.xml", samples, folder / "int8" / "model.xml", task)
            artifacts["int8"] = Artifact(precision="int8", files=_files(folder / "int8", folder))
            calib_info = {"data": f"rendered bills, ocr.synth seeds {_span(CALIBRATION_SEEDS)}",
                          "samples": len(samples), "method": "nncf post-training quantization", "options": options,
                          "nncf": _version("nncf")}
            if reference is None:
                reference = end_to_end_accuracy(_compile_set(generation, {}, root, threads), check, settings)
            int8 = OvModel(folder / "int8" / "model.xml", "int8", threads)
            value = end_to_end_accuracy(_compile_set(generation, {task: int8}, root, threads), check, settings)
            acc = AccuracyCheck(metric="character accuracy, whole pages, this model INT8 and the others FP32",
                                data=f"rendered bills, ocr.synth seeds {_span(CHECK_SEEDS)}",
                                reference=round(reference, 5), value=round(value, 5), tolerance=TOLERANCE,
                                passed=reference - value <= TOLERANCE)
        manifest = Manifest(name=src.name, task=f"ocr-{task}", source_package=src.package, source_version=version,
                            source_file=src.filename, source_sha256=source_sha, licence=LICENCE, artifacts=artifacts,
                            calibration=calib_info, check=acc,
                            extra={"recipe": RECIPE, "openvino": ov.get_version(), "generation": generation,
                                   "build_s": round(time.perf_counter() - started, 1)})
        write_manifest(manifest, root)
        manifests[task] = manifest
        verdict = (f"; INT8 {acc.value:.4f} vs FP32 {acc.reference:.4f} → {'INT8 ok' if acc.passed else 'FP32 kept'}"
                   if acc else "")
        report(f"{src.name}: built {', '.join(artifacts)} in {manifest.extra['build_s']} s{verdict}")
    return list(manifests.values())


def _span(seeds: range) -> str:
    return f"{seeds.start}-{seeds.stop - 1}"


def _version(package: str) -> str:
    import importlib.metadata as md

    try:
        return md.version(package)
    except md.PackageNotFoundError:
        return "?"

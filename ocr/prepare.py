"""Build the OCR model artifacts offline: ONNX from the installed wheels → OpenVINO IR FP32 → INT8 (nncf).

Detection is calibrated on rendered bills, recognition on real-like pages (``ocr.synth.reallike``: tinted
dot-matrix forms, stamps, photos); each INT8 model is checked end to end on separate sets of both kinds, and
the precision policy uses INT8 only if it is within tolerance on every set. The manifest records all of it.
Re-running is cheap: a model whose source, recipe and files are unchanged is left alone.
"""

from __future__ import annotations

import math
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import openvino as ov
from rapidfuzz.distance import Levenshtein

from core.hardware import package_version
from core.inference import OvModel
from core.modelstore import (
    AccuracyCheck,
    Artifact,
    Manifest,
    artifact_intact,
    model_path,
    read_manifest,
    sha256_file,
    write_manifest,
)
from core.settings import Settings
from ocr.detect import Detector, DetParams, det_input
from ocr.evaluate import CharScore, normalise, overlap, rect_of, score_page
from ocr.geometry import crop_quad
from ocr.models import GENERATIONS, LICENCE, OcrModels, SourceModel, artifact_file, locate_source, read_charset
from ocr.pipeline import OcrEngine
from ocr.recognize import REC_HEIGHT, ctc_decode, normalise_crop, rec_batch_input
from ocr.synth import RenderedPage, render_page
from ocr.synth.reallike import render_reallike

RECIPE = "ocr-prepare/6"  # bump when conversion, calibration or check changes
CALIBRATION_SEEDS = range(1000, 1050)  # det: 50 rendered bills
# Recognition is calibrated and its accuracy controlled on real-like pages: calibrated on plain rendered bills
# (ocr-prepare/5) INT8 lost nothing on them, yet 0.7 points of character accuracy on the real tuning bills' lines
# and 0.4 on real-like pages; calibrated and controlled on real-like pages it reads the real lines as FP32 does
# (docs/real-bills.md, seventh round).
REC_CALIBRATION_SEEDS = range(4000, 4050)  # 50 real-like pages
VALIDATION_SEEDS = range(4100, 4115)  # real-like pages: rec's accuracy-aware quantization reverts layers judged on these
CHECK_SEEDS = range(2000, 2020)  # the final end-to-end checks: never seen by calibration or validation
REALLIKE_CHECK_SEEDS = range(4200, 4220)
RENDERED, REALLIKE = "rendered bills, ocr.synth seeds {}", "real-like pages, ocr.synth.reallike seeds {}"
REC_CALIBRATION_CROPS = 300
TOLERANCE = 0.002  # largest drop in character accuracy an INT8 model may cost (0.2 points)
REC_MAX_DROP = 0.001  # what accuracy control aims for, inside TOLERANCE


def _pages(seeds: range) -> list[RenderedPage]:
    return [render_page(s) for s in seeds]


def _reallike_pages(seeds: range) -> list[RenderedPage]:
    return [render_reallike(s) for s in seeds]


def _check_sets() -> dict[str, list[RenderedPage]]:
    return {RENDERED.format(_span(CHECK_SEEDS)): _pages(CHECK_SEEDS),
            REALLIKE.format(_span(REALLIKE_CHECK_SEEDS)): _reallike_pages(REALLIKE_CHECK_SEEDS)}


def accuracy_check(reference: dict[str, float], value: dict[str, float]) -> AccuracyCheck:
    """INT8 passes when its drop is within TOLERANCE on every set; the check names the set with the larger drop."""
    drops = {name: round(reference[name] - value[name], 5) for name in reference}
    worst = max(drops, key=drops.__getitem__)
    return AccuracyCheck(metric="character accuracy, whole pages, this model INT8 and the others FP32",
                         data=f"{worst} (the larger drop of {len(drops)} sets)", reference=round(reference[worst], 5),
                         value=round(value[worst], 5), tolerance=TOLERANCE,
                         passed=all(d <= TOLERANCE for d in drops.values()),
                         sets={name: {"reference": round(reference[name], 5), "value": round(value[name], 5)}
                               for name in reference})


# Calibration inputs are cut to their content, without the shape-bucket padding added at run time:
# calibrating on padded inputs skews activation ranges towards the padding's zeros (measured: det INT8
# lost 0.24 points of character accuracy calibrated padded, 0.04 calibrated tight).
def _det_samples(pages: list[RenderedPage], settings: Settings) -> list[np.ndarray]:
    out = []
    for page in pages:
        x, _, (h, w) = det_input(page.image, settings.ocr_det_max_side)
        out.append(np.ascontiguousarray(x[:, :, :h, :w]))
    return out


def _rec_sample(crop: np.ndarray) -> np.ndarray:
    width = max(8, math.ceil(REC_HEIGHT * crop.shape[1] / max(crop.shape[0], 1) / 8) * 8)
    return normalise_crop(crop, width)[None]


def _detected_crops(pages: list[RenderedPage], detector: Detector) -> list[tuple[np.ndarray, str | None]]:
    """Crops as the pipeline cuts them (FP32 detector), each with the ground-truth text it covers when it
    covers exactly one line well (``None`` otherwise). Recognition is calibrated on what it will see."""
    out = []
    for page in pages:
        truth = [(line.text, rect_of(np.array(line.box))) for line in page.lines]
        for det in detector(page.image):
            r = rect_of(det.quad)
            overlaps = [overlap(r, g) for _, g in truth]
            best = int(np.argmax(overlaps)) if overlaps else -1
            text = truth[best][0] if best >= 0 and overlaps[best] > 0.6 else None
            out.append((crop_quad(page.image, det.quad), text))
    return out


def _quantize(fp32_xml: Path, samples: list[np.ndarray], out_xml: Path) -> dict:
    import nncf  # heavy import, only needed here

    model = ov.Core().read_model(str(fp32_xml))
    quantized = nncf.quantize(model, nncf.Dataset(samples), subset_size=len(samples),
                              preset=nncf.QuantizationPreset.PERFORMANCE)
    out_xml.parent.mkdir(parents=True, exist_ok=True)
    ov.save_model(quantized, str(out_xml), compress_to_fp16=False)
    return {"method": "nncf.quantize", "preset": "PERFORMANCE"}


def _quantize_rec(fp32_xml: Path, samples: list[np.ndarray], validation: list[tuple[np.ndarray, str]],
                  charset: list[str], out_xml: Path) -> dict:
    """Rec loses 0.7-0.9 points of character accuracy under plain post-training INT8 (measured on rendered
    bills, any preset). Its classification head stays FP32 (similar characters differ by small logit
    margins), the SVTR blocks get nncf's transformer scheme, and nncf's accuracy control reverts the few
    layers that still cost accuracy on a validation set, until the drop is at most REC_MAX_DROP."""
    import nncf

    model = ov.Core().read_model(str(fp32_xml))
    head = [op.get_friendly_name() for op in model.get_ordered_ops() if op.get_type_name() == "MatMul"][-1:]

    def char_accuracy(compiled: ov.CompiledModel, items) -> float:
        request, errors, chars = compiled.create_infer_request(), 0, 0
        for x, text in items:
            got = ctc_decode(np.array(request.infer({0: x})[0]), charset)[0].text
            want = normalise(text)
            errors += Levenshtein.distance(want, normalise(got))
            chars += len(want)
        return 1.0 - errors / max(chars, 1)

    quantized = nncf.quantize_with_accuracy_control(
        model, nncf.Dataset(samples), nncf.Dataset(validation, lambda item: item[0]), validation_fn=char_accuracy,
        max_drop=REC_MAX_DROP, drop_type=nncf.DropType.ABSOLUTE, subset_size=len(samples),
        model_type=nncf.ModelType.TRANSFORMER, ignored_scope=nncf.IgnoredScope(names=head))
    out_xml.parent.mkdir(parents=True, exist_ok=True)
    ov.save_model(quantized, str(out_xml), compress_to_fp16=False)
    return {"method": "nncf.quantize_with_accuracy_control", "model_type": "TRANSFORMER", "fp32_head": head,
            "max_drop": REC_MAX_DROP, "validation": f"{len(validation)} detected crops, ocr.synth.reallike seeds "
                                                    f"{_span(VALIDATION_SEEDS)}"}


def _calibrate(task: str, fp32_xml: Path, out_xml: Path, settings: Settings, root: Path, generation: str,
               threads: int) -> tuple[int, dict]:
    """Quantize one model; returns the number of calibration samples and how it was done."""
    if task == "det":
        samples = _det_samples(_pages(CALIBRATION_SEEDS), settings)
        return len(samples), {"data": RENDERED.format(_span(CALIBRATION_SEEDS)),
                              **_quantize(fp32_xml, samples, out_xml)}
    detector = Detector(OvModel(artifact_file(GENERATIONS[generation]["det"].name, "fp32", root), "fp32", threads),
                        DetParams(max_side=settings.ocr_det_max_side))
    crops = _detected_crops(_reallike_pages(REC_CALIBRATION_SEEDS), detector)
    picked = np.random.default_rng(0).choice(len(crops), size=min(REC_CALIBRATION_CROPS, len(crops)), replace=False)
    samples = [_rec_sample(crops[i][0]) for i in sorted(picked)]
    validation = [(rec_batch_input([c]), t)
                  for c, t in _detected_crops(_reallike_pages(VALIDATION_SEEDS), detector) if t]
    return len(samples), {"data": REALLIKE.format(_span(REC_CALIBRATION_SEEDS)),
                          **_quantize_rec(fp32_xml, samples, validation, read_charset(fp32_xml), out_xml)}


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

    check: dict[str, list[RenderedPage]] | None = None
    reference: dict[str, float] | None = None
    for task, src, version, source_sha, convert_s in todo:
        started = time.perf_counter() - convert_s
        folder = model_path(src.name, root)
        artifacts = {"fp32": Artifact(precision="fp32", files=_files(folder / "fp32", folder))}
        calib_info, acc = None, None
        if src.quantize:
            check = check or _check_sets()
            n, options = _calibrate(task, folder / "fp32" / "model.xml", folder / "int8" / "model.xml", settings,
                                    root, generation, threads)
            artifacts["int8"] = Artifact(precision="int8", files=_files(folder / "int8", folder))
            calib_info = {"samples": n, **options, "nncf": package_version("nncf")}
            if reference is None:
                fp32 = _compile_set(generation, {}, root, threads)
                reference = {name: end_to_end_accuracy(fp32, pages, settings) for name, pages in check.items()}
            int8 = _compile_set(generation, {task: OvModel(folder / "int8" / "model.xml", "int8", threads)}, root,
                                threads)
            acc = accuracy_check(reference, {name: end_to_end_accuracy(int8, pages, settings)
                                             for name, pages in check.items()})
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

"""Which OCR models exist, where their weights come from, and how a prepared set is loaded.

Weights come from Apache-2.0 registry wheels that ship PP-OCR ONNX files (installed by setup, never
downloaded at run time). Only the model files and character lists are taken; pre- and post-processing
are ours. ``medkg models prepare`` turns them into OpenVINO IR (FP32 + INT8) in the model directory.
"""

from __future__ import annotations

import importlib.metadata as md
from dataclasses import dataclass
from pathlib import Path

from core.hardware import probe
from core.inference import InferenceModel, OvModel, ov_core
from core.modelstore import Manifest, model_path, models_dir, read_manifest
from core.precision import Decision, choose_ocr_precision
from ocr.recognize import charset_from_model

LICENCE = "Apache-2.0 (PaddleOCR weights by Baidu, packaged by RapidAI)"


@dataclass(frozen=True)
class SourceModel:
    name: str  # folder in the model directory
    task: str  # det | cls | rec
    package: str  # the wheel that ships the ONNX file
    filename: str
    quantize: bool


GENERATIONS: dict[str, dict[str, SourceModel]] = {
    "ppocrv4": {
        "det": SourceModel("ppocrv4-det", "det", "rapidocr-onnxruntime", "ch_PP-OCRv4_det_infer.onnx", True),
        "cls": SourceModel("ppocr-cls", "cls", "rapidocr-onnxruntime", "ch_ppocr_mobile_v2.0_cls_infer.onnx", False),
        "rec": SourceModel("ppocrv4-rec", "rec", "rapidocr-onnxruntime", "ch_PP-OCRv4_rec_infer.onnx", True),
    },
    "ppocrv6": {
        "det": SourceModel("ppocrv6-det", "det", "rapidocr", "PP-OCRv6_det_small.onnx", True),
        "cls": SourceModel("ppocr-cls", "cls", "rapidocr-onnxruntime", "ch_ppocr_mobile_v2.0_cls_infer.onnx", False),
        "rec": SourceModel("ppocrv6-rec", "rec", "rapidocr", "PP-OCRv6_rec_small.onnx", True),
    },
}
# PP-OCRv6 small: same character accuracy as v4 on rendered bills but fewer misread rare characters
# (drug names), which lifts bills' line-item F1 from 0.950 to 0.982 and header accuracy from 0.962 to
# 0.972 (benchmarks/bills.py); it costs half the speed (1.2 vs 2.4 pages/s, benchmarks/ocr.py).
DEFAULT_GENERATION = "ppocrv6"


class ModelNotPrepared(RuntimeError):
    pass


def locate_source(src: SourceModel) -> tuple[Path, str]:
    """Path of the ONNX file inside its installed wheel, and the wheel's version (no import of the package)."""
    try:
        dist = md.distribution(src.package)
    except md.PackageNotFoundError as exc:
        raise ModelNotPrepared(f"{src.package} is not installed: `make setup` installs it (pip install --no-deps "
                               f"{src.package})") from exc
    for f in dist.files or []:
        if f.name == src.filename:
            return Path(dist.locate_file(f)), dist.version
    raise ModelNotPrepared(f"{src.filename} not found in {src.package} {dist.version}")


def read_charset(onnx_or_ir: Path) -> list[str]:
    """The recogniser's characters, stored by PaddleOCR exports in the model metadata key ``character``."""
    model = ov_core().read_model(str(onnx_or_ir))
    if not model.has_rt_info(["framework", "character"]):
        raise ModelNotPrepared(f"{onnx_or_ir} has no character list in its metadata")
    return charset_from_model(model.get_rt_info(["framework", "character"]).astype(str))


@dataclass
class OcrModels:
    """The three compiled models of one generation plus what the policy decided for each."""

    generation: str
    det: InferenceModel
    cls: InferenceModel
    rec: InferenceModel
    charset: list[str]
    decisions: dict[str, Decision]

    @property
    def version(self) -> str:
        return f"{self.generation}:" + ",".join(f"{t}={getattr(self, t).executes}" for t in ("det", "cls", "rec"))


def artifact_file(name: str, precision: str, root: Path | None = None) -> Path:
    return model_path(name, root) / precision / "model.xml"


def decide(generation: str = DEFAULT_GENERATION, requested: str = "auto",
           root: Path | None = None) -> dict[str, tuple[SourceModel, Manifest | None, Decision]]:
    hw = probe()
    out = {}
    for task, src in GENERATIONS[generation].items():
        manifest = read_manifest(src.name, root)
        if src.quantize or requested == "bf16":
            decision = choose_ocr_precision(manifest, hw, requested)
        else:
            decision = Decision("fp32", "FP32: a small model, not worth quantizing (under 1 MB, one call per page)")
        out[task] = (src, manifest, decision)
    return out


USER_MODEL_FILES = ("*.xml", "*.onnx", "*.pdmodel")  # OpenVINO IR, ONNX, PaddlePaddle inference format
USER_CHARSET_FILES = ("charset.txt", "*keys*.txt", "*dict*.txt")


def _find(folder: Path, patterns: tuple[str, ...], what: str) -> Path:
    for pattern in patterns:
        if found := sorted(folder.glob(pattern)):
            return found[0]
    raise ModelNotPrepared(f"{folder}: no {what} ({', '.join(patterns)})")


def load_user_models(folder: Path, requested: str = "auto", threads: int = 1) -> OcrModels:
    """A user's own PP-OCR models: ``det/``, ``cls/``, ``rec/`` folders, each holding an ONNX file, an
    OpenVINO IR or a PaddlePaddle inference model. The character list comes from the rec model's metadata
    or a text file (one character per line) in ``rec/`` or the folder. They run at FP32 (or BF16 on request):
    INT8 needs calibration and a check, which ``medkg models prepare`` does for the shipped models only."""
    hw = probe()
    decision = choose_ocr_precision(None, hw, requested if requested in ("fp32", "bf16") else "fp32")
    decision = Decision(decision.precision, f"user model directory {folder}: {decision.reason}")
    paths = {t: _find(folder / t, USER_MODEL_FILES, f"{t} model") for t in ("det", "cls", "rec")}
    compiled = {t: OvModel(p, decision.precision, threads) for t, p in paths.items()}
    try:
        charset = read_charset(paths["rec"])
    except ModelNotPrepared:
        keys = next((p for d in (folder / "rec", folder) for pat in USER_CHARSET_FILES for p in sorted(d.glob(pat))),
                    None)
        if keys is None:
            raise ModelNotPrepared(f"{folder}: the rec model has no character list; add rec/charset.txt") from None
        charset = charset_from_model(keys.read_text(encoding="utf-8"))
    return OcrModels(f"user:{folder.name}", compiled["det"], compiled["cls"], compiled["rec"], charset,
                     {t: decision for t in compiled})


def load(generation: str = DEFAULT_GENERATION, requested: str = "auto", threads: int = 1,
         root: Path | None = None) -> OcrModels:
    """Load a prepared generation (``ppocrv4``, ``ppocrv6``) or a user's model directory."""
    if Path(generation).is_dir():
        return load_user_models(Path(generation), requested, threads)
    if generation not in GENERATIONS:
        raise ModelNotPrepared(f"unknown OCR model generation {generation!r}; known: {sorted(GENERATIONS)}")
    compiled, decisions = {}, {}
    for task, (src, manifest, decision) in decide(generation, requested, root).items():
        path = artifact_file(src.name, decision.precision if decision.precision != "bf16" else "fp32", root)
        if manifest is None or not path.is_file():
            raise ModelNotPrepared(f"OCR model {src.name} is not prepared in {root or models_dir()}: "
                                   f"run `medkg models prepare`")
        compiled[task] = OvModel(path, decision.precision, threads)
        decisions[task] = decision
    charset = read_charset(artifact_file(GENERATIONS[generation]["rec"].name, "fp32", root))
    return OcrModels(generation, compiled["det"], compiled["cls"], compiled["rec"], charset, decisions)

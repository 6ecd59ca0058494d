"""`medkg doctor`: what this machine can do and what each model will run at, with the reason."""

from __future__ import annotations

from typing import Any

from core.hardware import FLAGS_OF_INTEREST, package_version, probe
from core.settings import Settings


def _torch_report() -> dict[str, Any]:
    try:
        import torch
    except ImportError:
        return {"installed": False}
    return {"installed": True, "version": torch.__version__, "cuda": torch.cuda.is_available(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(), "threads": torch.get_num_threads(),
            "mkldnn": torch.backends.mkldnn.is_available()}


def _ocr_report(settings: Settings) -> list[dict[str, Any]]:
    from core.inference import OvModel
    from ocr.models import GENERATIONS, artifact_file, decide

    rows = []
    for generation in GENERATIONS:
        for task, (src, manifest, decision) in decide(generation, settings.ocr_precision, settings.models).items():
            row = {"generation": generation, "default": generation == settings.ocr_models, "model": src.name,
                   "task": task, "prepared": manifest is not None, "precision": decision.precision,
                   "reason": decision.reason}
            path = artifact_file(src.name, "fp32" if decision.precision == "bf16" else decision.precision,
                                 settings.models)
            if manifest is not None and path.is_file():
                # compile and read back what the heavy layers really execute in
                row["executes"] = OvModel(path, decision.precision, settings.inference_threads()).executes
            rows.append(row)
    return rows


def report(settings: Settings) -> dict[str, Any]:
    hw = probe()
    return {
        "cpu": {"model": hw.cpu_model, "cores": hw.cores, "isa": hw.isa_summary,
                "flags": {f: f in hw.flags for f in FLAGS_OF_INTEREST}, "amx": hw.amx, "vnni": hw.vnni,
                "native_bf16": hw.native_bf16},
        "openvino": {"version": hw.openvino_version, "devices": list(hw.openvino_devices),
                     "cpu_capabilities": list(hw.openvino_capabilities)},
        "torch": _torch_report(),
        "nncf": package_version("nncf"),
        "models_dir": str(settings.models),
        "threads": settings.inference_threads(),
        "ocr_models": _ocr_report(settings),
        "ner": _ner_report(hw),
        "relations": _relations_report(hw),
        "ipex": package_version("intel-extension-for-pytorch") or "not installed (optional; retired upstream)",
        "notes": list(hw.notes),
    }


def _ner_report(hw) -> dict[str, Any]:
    """The NER model the tagger would load and the backend the policy picks for it."""
    from core.precision import choose_ner_backend
    from ner.backends import resolve_model_dir

    decision = choose_ner_backend(hw)
    return {"model": _model_path(resolve_model_dir), "backend": decision.precision, "reason": decision.reason}


def _relations_report(hw) -> dict[str, Any]:
    """The relation model the extractor would load and the precision the policy picks for it."""
    from core.precision import choose_re_precision
    from relations.extract import resolve_model_dir

    decision = choose_re_precision(hw)
    return {"model": _model_path(resolve_model_dir), "precision": f"torch-{decision.precision}",
            "reason": decision.reason}


def _model_path(resolve) -> str:
    """The model directory a loader would use, or why there is none."""
    try:
        return str(resolve())
    except FileNotFoundError as exc:
        return f"missing: {exc}"

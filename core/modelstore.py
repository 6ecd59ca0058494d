"""The model directory: one folder per model, each with a manifest saying where it came from.

``$MEDKG_MODELS/<name>/manifest.json`` records the source package and version, sha256 of every input
and output, each precision built, the calibration data and the accuracy check that decides whether a
quantized artifact may be used.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from pydantic import Field

from core.records import Record, utcnow
from core.settings import get_settings

MANIFEST = "manifest.json"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class Artifact(Record):
    precision: str  # fp32, int8 ...
    files: dict[str, str]  # relative path -> sha256


class AccuracyCheck(Record):
    metric: str
    data: str
    reference: float  # the FP32 artifact's score
    value: float  # the quantized artifact's score
    tolerance: float  # largest allowed drop
    passed: bool  # within tolerance on every set checked
    sets: dict[str, dict[str, float]] = Field(default_factory=dict)  # each set's reference and value


class Manifest(Record):
    name: str
    task: str
    source_package: str
    source_version: str
    source_file: str
    source_sha256: str
    licence: str
    artifacts: dict[str, Artifact] = Field(default_factory=dict)
    calibration: dict[str, Any] | None = None
    check: AccuracyCheck | None = None
    extra: dict[str, Any] = Field(default_factory=dict)
    created_at: str = Field(default_factory=lambda: utcnow().isoformat(timespec="seconds"))

    def usable(self, precision: str) -> bool:
        """A quantized artifact is usable only if it passed its accuracy check."""
        if precision not in self.artifacts:
            return False
        if precision == "int8":
            return bool(self.check and self.check.passed)
        return True


def models_dir() -> Path:
    return get_settings().models.expanduser()


def model_path(name: str, root: Path | None = None) -> Path:
    return (root or models_dir()) / name


def read_manifest(name: str, root: Path | None = None) -> Manifest | None:
    path = model_path(name, root) / MANIFEST
    if not path.is_file():
        return None
    return Manifest.model_validate_json(path.read_text(encoding="utf-8"))


def write_manifest(manifest: Manifest, root: Path | None = None) -> Path:
    folder = model_path(manifest.name, root)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / MANIFEST
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(manifest.model_dump(mode="json"), ensure_ascii=False, indent=2), encoding="utf-8")
    tmp.replace(path)  # atomic: a crash never leaves half a manifest
    return path


def artifact_intact(manifest: Manifest, precision: str, root: Path | None = None) -> bool:
    """True when every file of the artifact exists with the sha256 the manifest recorded."""
    art = manifest.artifacts.get(precision)
    if art is None:
        return False
    folder = model_path(manifest.name, root)
    return all((folder / rel).is_file() and sha256_file(folder / rel) == digest for rel, digest in art.files.items())

"""`medkg models prepare`: manifests describe real files, and a second run changes nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from core.modelstore import MANIFEST, artifact_intact, model_path, read_manifest, sha256_file
from ocr.models import DEFAULT_GENERATION, GENERATIONS, artifact_file, locate_source
from ocr.prepare import (
    CALIBRATION_SEEDS,
    CHECK_SEEDS,
    REALLIKE_CHECK_SEEDS,
    REC_CALIBRATION_SEEDS,
    TOLERANCE,
    VALIDATION_SEEDS,
    accuracy_check,
)

MEDKG = str(Path(sys.executable).with_name("medkg"))
DEFAULT = GENERATIONS[DEFAULT_GENERATION]


@pytest.mark.parametrize("task", ["det", "cls", "rec"])
def test_manifest_records_source_outputs_calibration_and_check(settings, task):
    src = DEFAULT[task]
    m = read_manifest(src.name, settings.models)
    assert m is not None, "run `make setup` (it runs medkg models prepare)"
    onnx, version = locate_source(src)
    assert (m.source_package, m.source_version, m.source_sha256) == (src.package, version, sha256_file(onnx))
    assert "Apache-2.0" in m.licence
    assert all(artifact_intact(m, p, settings.models) for p in m.artifacts)
    assert artifact_file(src.name, "fp32", settings.models).is_file()
    if src.quantize:
        assert set(m.artifacts) == {"fp32", "int8"}
        assert m.calibration and m.calibration["samples"] >= 50
        seeds = REC_CALIBRATION_SEEDS if task == "rec" else CALIBRATION_SEEDS
        assert f"seeds {seeds.start}-" in m.calibration["data"]
        c = m.check
        assert c is not None and c.tolerance == TOLERANCE
        # checked on rendered bills and on real-like pages; passed only within tolerance on both
        rendered, reallike = c.sets
        assert f"seeds {CHECK_SEEDS.start}-" in rendered and f"seeds {REALLIKE_CHECK_SEEDS.start}-" in reallike
        assert c.passed == all(round(v["reference"] - v["value"], 5) <= c.tolerance for v in c.sets.values())
    else:
        assert set(m.artifacts) == {"fp32"} and m.check is None


def test_check_calibration_and_validation_sets_are_disjoint():
    rendered = [set(CALIBRATION_SEEDS), set(CHECK_SEEDS)]
    reallike = [set(REC_CALIBRATION_SEEDS), set(VALIDATION_SEEDS), set(REALLIKE_CHECK_SEEDS)]
    for sets in (rendered, reallike):
        assert sum(map(len, sets)) == len(set().union(*sets))


def test_accuracy_check_needs_every_set_within_tolerance_and_names_the_worst():
    reference = {"rendered": 0.990, "real-like": 0.700}
    ok = accuracy_check(reference, {"rendered": 0.991, "real-like": 0.699})
    assert ok.passed and ok.data.startswith("real-like") and (ok.reference, ok.value) == (0.700, 0.699)
    # INT8 quantized for plain rendered bills: nothing lost on them, real-like print lost (as ocr-prepare/5 did)
    failed = accuracy_check(reference, {"rendered": 0.9905, "real-like": 0.6964})
    assert not failed.passed and failed.data.startswith("real-like")
    assert failed.sets["rendered"] == {"reference": 0.99, "value": 0.9905}


def test_second_prepare_changes_nothing(settings):
    folders = [model_path(s.name, settings.models) for s in DEFAULT.values()]
    before = {f: (f / MANIFEST).read_bytes() for f in folders}
    out = subprocess.run([MEDKG, "models", "prepare", "--ocr", DEFAULT_GENERATION], capture_output=True, text=True,
                         timeout=300, check=True)
    assert out.stderr.count("up to date") == 4, out.stderr  # det, rec, cls + the NER encoder
    assert {f: (f / MANIFEST).read_bytes() for f in folders} == before

"""Records, settings, the hardware probe, the precision policy and the model store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from core.hardware import Hardware, probe
from core.modelstore import (
    AccuracyCheck,
    Artifact,
    Manifest,
    artifact_intact,
    read_manifest,
    sha256_file,
    write_manifest,
)
from core.precision import choose_ocr_precision
from core.records import Document, DocumentKind, TextLine
from core.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
MEDKG = str(Path(sys.executable).with_name("medkg"))


def hw(*flags: str, caps=("FP32", "INT8")) -> Hardware:
    return Hardware(cpu_model="test", cores=2, flags=frozenset(flags), openvino_capabilities=tuple(caps))


def manifest(passed: bool | None, with_int8: bool = True) -> Manifest:
    arts = {"fp32": Artifact(precision="fp32", files={})}
    if with_int8:
        arts["int8"] = Artifact(precision="int8", files={})
    check = None if passed is None else AccuracyCheck(metric="char acc", data="rendered", reference=0.995,
                                                      value=0.994 if passed else 0.98, tolerance=0.002, passed=passed)
    return Manifest(name="m", task="ocr-rec", source_package="p", source_version="1", source_file="f",
                    source_sha256="0", licence="x", artifacts=arts, check=check)


def test_document_id_is_content_hash_and_records_are_frozen():
    a = Document.from_bytes(b"bill", DocumentKind.image, "a.png")
    b = Document.from_bytes(b"bill", DocumentKind.image, "elsewhere/b.png")
    assert a.doc_id == b.doc_id and len(a.doc_id) == 64
    with pytest.raises(ValidationError):
        a.doc_id = "x"  # type: ignore[misc]
    line = TextLine(box=((0, 0), (10, 0), (10, 5), (0, 5)), text="床位费", confidence=0.9)
    assert (line.left, line.top, line.right, line.bottom) == (0, 0, 10, 5)
    with pytest.raises(ValidationError):
        TextLine(box=((0, 0), (1, 0), (1, 1), (0, 1)), text="x", confidence=1.5)


def test_settings_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("MEDKG_MODELS", str(tmp_path))
    monkeypatch.setenv("MEDKG_MAX_PAGES", "7")
    s = Settings()
    assert s.models == tmp_path and s.max_pages == 7
    monkeypatch.setenv("MEDKG_MAX_PAGES", "0")
    with pytest.raises(ValidationError):
        Settings()


def test_probe_reads_the_real_cpu_flags():
    flags = set()
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            break
    h = probe()
    assert h.amx == ({"amx_bf16", "amx_int8"} <= flags)
    assert ("avx2" in h.flags) == ("avx2" in flags)
    assert "FP32" in h.openvino_capabilities


@pytest.mark.parametrize("flags,summary", [
    (("avx2",), "AVX2 only"),
    (("avx2", "avx512f", "avx512_vnni"), "AVX-512 VNNI"),
    (("avx2", "avx512_bf16", "avx512_vnni"), "AVX-512 BF16 + VNNI"),
    (("avx2", "amx_bf16", "amx_int8", "avx512_bf16"), "AMX (BF16 + INT8 tiles)"),
])
def test_isa_summary(flags, summary):
    assert hw(*flags).isa_summary == summary


def test_policy_int8_only_within_its_accuracy_check():
    avx2 = hw("avx2")
    assert choose_ocr_precision(manifest(True), avx2).precision == "int8"
    failed = choose_ocr_precision(manifest(False), avx2)
    assert failed.precision == "fp32" and "tolerance" in failed.reason
    assert choose_ocr_precision(manifest(None), avx2).precision == "fp32"
    assert choose_ocr_precision(manifest(None, with_int8=False), avx2).precision == "fp32"
    assert choose_ocr_precision(None, avx2).precision == "fp32"
    assert choose_ocr_precision(manifest(True), avx2, "fp32").precision == "fp32"
    forced = choose_ocr_precision(manifest(False), avx2, "int8")
    assert forced.precision == "int8" and "FAILED" in forced.reason


def test_policy_bf16_only_where_executed_natively():
    assert choose_ocr_precision(manifest(True), hw("avx2"), "bf16").precision == "fp32"
    amx = hw("avx2", "amx_bf16", "amx_int8", "avx512_bf16", caps=("FP32", "INT8", "BF16"))
    assert choose_ocr_precision(manifest(True), amx, "bf16").precision == "bf16"
    # auto: AMX runs BF16 (faster than INT8 there, no quantization loss); INT8 stays on request
    assert choose_ocr_precision(manifest(True), amx).precision == "bf16"
    assert choose_ocr_precision(manifest(True), amx, "int8").precision == "int8"
    # AVX-512 BF16 without AMX (AMD Zen 4): BF16 too, 1.08x INT8's time there and reading the real tuning bills'
    # header fields as FP32 does (docs/real-bills.md, sixteenth round); INT8 on request
    avx512_bf16 = hw("avx2", "avx512_bf16", "avx512_vnni", caps=("FP32", "INT8", "BF16"))
    zen4 = choose_ocr_precision(manifest(True), avx512_bf16)
    assert zen4.precision == "bf16" and "AVX-512 BF16" in zen4.reason
    assert choose_ocr_precision(manifest(True), avx512_bf16, "int8").precision == "int8"
    # BF16 flags without OpenVINO's BF16 capability: the hint would be ignored, so INT8 as on any VNNI CPU
    assert choose_ocr_precision(manifest(True), hw("avx2", "avx512_bf16", "avx512_vnni")).precision == "int8"


def test_manifest_roundtrip_and_tamper_detection(tmp_path):
    folder = tmp_path / "m" / "fp32"
    folder.mkdir(parents=True)
    (folder / "model.bin").write_bytes(b"weights")
    m = manifest(True).model_copy(update={"artifacts": {
        "fp32": Artifact(precision="fp32", files={"fp32/model.bin": sha256_file(folder / "model.bin")})}})
    write_manifest(m, tmp_path)
    back = read_manifest("m", tmp_path)
    assert back == m
    assert artifact_intact(back, "fp32", tmp_path)
    (folder / "model.bin").write_bytes(b"tampered")
    assert not artifact_intact(back, "fp32", tmp_path)
    assert read_manifest("absent", tmp_path) is None


def test_doctor_reports_cpu_and_each_ocr_model():
    out = subprocess.run([MEDKG, "doctor", "--json"], capture_output=True, text=True, check=True, cwd=ROOT)
    rep = json.loads(out.stdout)
    h = probe()
    assert rep["cpu"]["amx"] == h.amx and rep["cpu"]["flags"]["avx2"] == ("avx2" in h.flags)
    assert rep["openvino"]["version"] and rep["torch"]["installed"] and "+cpu" in rep["torch"]["version"]
    default = [r for r in rep["ocr_models"] if r["default"]]
    assert {r["task"] for r in default} == {"det", "cls", "rec"}
    for row in default:
        assert row["prepared"] and row["precision"] in ("int8", "fp32", "bf16") and row["reason"]
        assert row["executes"].startswith({"int8": "int8", "fp32": "f32", "bf16": "bf16"}[row["precision"]])
    human = subprocess.run([MEDKG, "doctor"], capture_output=True, text=True, check=True, cwd=ROOT,
                           env={**os.environ, "COLUMNS": "200"})
    assert "ppocrv4-rec" in human.stdout and "avx2" in human.stdout


def test_ner_backend_policy_follows_the_cpu():
    from core.precision import choose_ner_backend

    assert choose_ner_backend(hw("avx2", "amx_bf16", "amx_int8", caps=("FP32", "INT8", "BF16"))).precision == \
        "openvino-bf16"
    assert choose_ner_backend(hw("avx2", "avx512_vnni")).precision == "openvino-int8"
    assert choose_ner_backend(hw("avx2")).precision == "openvino-fp32"
    # BF16 flags without OpenVINO's BF16 capability: the hint would be ignored, so never BF16
    assert choose_ner_backend(hw("avx2", "avx512_bf16", "avx512_vnni")).precision == "openvino-int8"

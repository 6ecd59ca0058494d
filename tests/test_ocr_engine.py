"""The OCR engine end to end: real prepared models on rendered bills with exact ground truth."""

from __future__ import annotations

import io

import numpy as np
import pytest
from pdfs import make_pdf
from pdfs import text as pdf_text
from PIL import Image
from rapidfuzz.distance import Levenshtein

from core.hardware import probe
from core.records import TextSource
from ocr.evaluate import CharScore, normalise, score_page
from ocr.geometry import crop_quad, order_clockwise
from ocr.readers import open_document
from ocr.synth import render_line, render_page

TEST_SEEDS = range(300, 306)  # disjoint from calibration (1000+), INT8 check (2000+) and benchmark (5000+)


def _score(engine, page) -> tuple[CharScore, int]:
    result = engine.read_image(page.image)
    h, w = page.image.shape[:2]
    truth = [(line.text, np.array(line.box)) for line in page.lines]
    return score_page(result.lines, truth, truth_size=(w, h), rotation=result.rotation), result.rotation


def test_recognition_accuracy_on_rendered_lines(ocr_engine):
    """≥ 0.99 character accuracy on 400 rendered, degraded single lines (recognizer alone)."""
    samples = [render_line(seed) for seed in range(400)]
    results = ocr_engine.recognizer([img for img, _ in samples])
    score = CharScore()
    for (_, text), rec in zip(samples, results):
        want, got = normalise(text), normalise(rec.text)
        score.errors += Levenshtein.distance(want, got)
        score.chars += len(want)
    assert score.chars > 3000
    assert score.accuracy >= 0.99, score


def test_whole_page_accuracy_on_rendered_bills(ocr_engine):
    total = CharScore()
    for seed in TEST_SEEDS:
        score, rotation = _score(ocr_engine, render_page(seed))
        assert rotation == 0
        total += score
    assert total.accuracy >= 0.98, total


@pytest.mark.parametrize("rotation", [90, 180, 270])
def test_rotated_pages_are_read_upright(ocr_engine, rotation):
    """Turned upright and read about as well as the same page upright (within a point)."""
    for seed in (310, 311):
        upright, _ = _score(ocr_engine, render_page(seed))
        page = render_page(seed, rotation=rotation)
        score, applied = _score(ocr_engine, page)
        assert (applied + rotation) % 360 == 0, f"page rotated {rotation}° was turned {applied}°"
        assert score.accuracy >= min(0.97, upright.accuracy - 0.01), (score, upright)


def test_small_text_on_a_large_photo_is_detected_again_finer(ocr_engine, settings):
    """A receipt taking a fifth of a phone photo (render_reallike photo sheets; real photos run to 4000 px): at the
    detector's 1280 px its text is under 10 px high and lines are lost; detected again finer, they are read."""
    from ocr.pipeline import OcrEngine

    coarse = OcrEngine(ocr_engine.models, settings.model_copy(update={"ocr_det_fine_max_side": 0}))
    fine_total, coarse_total = CharScore(), CharScore()
    for seed in (312, 313):
        page = render_page(seed)
        small = np.asarray(Image.fromarray(page.image).resize((page.image.shape[1] * 9 // 20, page.image.shape[0] * 9 // 20),
                                                              Image.Resampling.LANCZOS))
        h, w = small.shape[:2]
        canvas = np.full((page.image.shape[0] * 19 // 10, page.image.shape[1] * 22 // 10, 3), 235, np.uint8)
        oy, ox = (canvas.shape[0] - h) // 3, (canvas.shape[1] - w) // 4
        canvas[oy:oy + h, ox:ox + w] = small
        truth = [(line.text, np.array(line.box) * 0.45 + [ox, oy]) for line in page.lines]
        size = (canvas.shape[1], canvas.shape[0])
        for engine, total in ((ocr_engine, fine_total), (coarse, coarse_total)):
            result = engine.read_image(canvas)
            total += score_page(result.lines, truth, truth_size=size, rotation=result.rotation)
    assert fine_total.accuracy >= 0.85 and fine_total.accuracy >= coarse_total.accuracy + 0.1, (fine_total, coarse_total)
    # a large scan whose text is large enough at 1280 px is detected once
    page = render_page(312).image
    page = np.asarray(Image.fromarray(page).resize((page.shape[1] * 2, page.shape[0] * 2)))
    assert ocr_engine.detector.finer_side(page.shape[:2], ocr_engine.detector(page)) is None


def test_upright_output_boxes_lie_on_the_upright_page(ocr_engine):
    page = render_page(312, rotation=90)
    result = ocr_engine.read_image(page.image)
    h, w = page.image.shape[:2]
    assert (result.width, result.height) == (h, w)  # turned a quarter back
    for line in result.lines:
        assert 0 <= line.left <= line.right <= result.width and 0 <= line.top <= line.bottom <= result.height


def test_reading_order_follows_the_page(ocr_engine):
    page = render_page(313, degrade=False)
    result = ocr_engine.read_image(page.image)
    tops = [line.top for line in result.lines]
    # rows go down the page: allow within-row left-to-right order, never a jump back up by more than a line
    heights = [line.bottom - line.top for line in result.lines]
    assert all(b >= a - h for a, b, h in zip(tops, tops[1:], heights))


def test_scanned_pdf_is_ocrd_and_text_pdf_uses_its_text_layer(ocr_engine):
    page = render_page(314, degrade=False)
    buf = io.BytesIO()
    Image.fromarray(page.image).save(buf, format="PDF", resolution=150)
    scanned = open_document(buf.getvalue(), name="scan.pdf")
    (result,) = ocr_engine.read(scanned.pages(), scanned.document.doc_id)
    assert result.source == TextSource.ocr
    assert result.doc_id == scanned.document.doc_id
    assert normalise(page.lines[0].text) in normalise(result.text)

    doc = open_document(make_pdf([{"content": pdf_text(72, 700, 14, "TOTAL 1234.56")}]), name="text.pdf")
    (layer,) = ocr_engine.read(doc.pages(), doc.document.doc_id)
    assert layer.source == TextSource.pdf_text
    assert "TOTAL 1234.56" in layer.text


def test_models_execute_the_precision_the_policy_chose(ocr_engine):
    models = ocr_engine.models
    for task in ("det", "rec"):
        decision = models.decisions[task]
        executed = getattr(models, task).executes
        if decision.precision == "int8":  # "int8+bf16" where the CPU runs the unquantized rest in BF16
            assert executed.startswith("int8")
        elif decision.precision == "fp32":
            assert executed == "f32"  # never a silent BF16 default
    assert models.cls.executes in ("f32", "bf16")
    if not probe().native_bf16:
        assert all(getattr(models, t).executes != "bf16" for t in ("det", "cls", "rec"))


def test_blank_page_gives_no_lines(ocr_engine):
    result = ocr_engine.read_image(np.full((800, 600, 3), 255, np.uint8))
    assert result.lines == () and result.rotation == 0


def test_crops_of_ground_truth_boxes_are_readable(ocr_engine):
    """Ties the renderer's boxes to the recogniser: GT crops read back as the GT text."""
    page = render_page(315, degrade=False)
    crops = [crop_quad(page.image, order_clockwise(np.array(line.box))) for line in page.lines]
    recs = ocr_engine.recognizer(crops)
    exact = sum(normalise(r.text) == normalise(line.text) for r, line in zip(recs, page.lines))
    assert exact / len(page.lines) >= 0.9


def test_cli_reads_the_shipped_sample_and_reports_bad_files(tmp_path):
    import json
    import subprocess
    import sys
    from pathlib import Path

    medkg = str(Path(sys.executable).with_name("medkg"))
    root = Path(__file__).resolve().parents[1]
    bad = tmp_path / "scan.pdf"
    bad.write_text("<html>not a pdf</html>")
    out = subprocess.run([medkg, "ocr", "read", "samples/bill.jpg", str(bad)], cwd=root, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 1  # one bad file: reported, the good one still printed
    (page,) = [json.loads(line) for line in out.stdout.splitlines()]
    assert page["file"] == "samples/bill.jpg" and len(page["lines"]) > 20
    assert any("票据" in line["text"] for line in page["lines"])
    assert "unsupported-format" in out.stderr and "HTML" in out.stderr


def test_user_model_directory_of_onnx_files(settings, tmp_path):
    """A user's own PP-OCR export (here: the same ONNX files, laid out as a user would) runs at FP32."""
    import shutil

    from ocr.models import GENERATIONS, ModelNotPrepared
    from ocr.pipeline import OcrEngine

    for task, src in GENERATIONS["ppocrv4"].items():
        (tmp_path / task).mkdir()
        shutil.copyfile(settings.models / src.name / "onnx" / "model.onnx", tmp_path / task / "inference.onnx")
    engine = OcrEngine.load(generation=str(tmp_path), settings=settings)
    assert {d.precision for d in engine.models.decisions.values()} == {"fp32"}
    assert "user model directory" in engine.models.decisions["rec"].reason
    page = render_page(316, degrade=False)
    score, _ = _score(engine, page)
    assert score.accuracy >= 0.97
    shutil.rmtree(tmp_path / "cls")
    with pytest.raises(ModelNotPrepared, match="cls"):
        OcrEngine.load(generation=str(tmp_path), settings=settings)

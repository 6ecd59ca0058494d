"""ocr.synth: rendered bills with exact ground truth (real rendering, real fonts)."""

from __future__ import annotations

import importlib.metadata as md
import json
from decimal import Decimal
from pathlib import Path

import cv2
import numpy as np
import pytest

from ocr.synth import GtLine, RenderedPage, amount_in_words, cjk_fonts, lexicon, render_line, render_page, sample_pages
from ocr.synth import fonts as synth_fonts

SEEDS = range(12)  # covers all three templates, stamps, skew and wobble


@pytest.fixture(scope="module")
def clean_pages() -> dict[int, RenderedPage]:
    return {s: render_page(s, degrade=False) for s in SEEDS}


@pytest.fixture(scope="module")
def degraded_pages() -> dict[int, RenderedPage]:
    return {s: render_page(s) for s in SEEDS}


def _gray(page: RenderedPage) -> np.ndarray:
    return cv2.cvtColor(page.image, cv2.COLOR_RGB2GRAY).astype(np.float32)


def _aabb(line: GtLine) -> tuple[float, float, float, float]:
    xs, ys = [p[0] for p in line.box], [p[1] for p in line.box]
    return min(xs), min(ys), max(xs), max(ys)


# -- API shape and determinism ------------------------------------------------------------------


def test_page_shape_and_meta(degraded_pages):
    templates = set()
    for seed, page in degraded_pages.items():
        assert page.seed == seed and page.rotation == 0
        assert page.image.dtype == np.uint8 and page.image.ndim == 3 and page.image.shape[2] == 3
        assert len(page.lines) >= 20
        assert all(isinstance(ln, GtLine) and ln.text and ln.text == ln.text.strip() for ln in page.lines)
        assert all(len(ln.box) == 4 and all(len(p) == 2 for p in ln.box) for ln in page.lines)
        json.dumps(page.meta)  # plain data
        assert page.meta["fonts"] and page.meta["dropped_items"] == 0
        templates.add(page.meta["template"])
    assert templates == {"e_receipt", "paper_receipt", "itemised"}


def test_same_seed_same_bytes_other_seed_other_page():
    a, b, c = render_page(5), render_page(5), render_page(6)
    assert a.image.tobytes() == b.image.tobytes()
    assert a.lines == b.lines and a.meta == b.meta
    assert a.image.shape != c.image.shape or a.image.tobytes() != c.image.tobytes()
    assert [ln.text for ln in a.lines] != [ln.text for ln in c.lines]


def test_sample_pages_is_seed_plus_i():
    pages = list(sample_pages(3, seed=40, degrade=False))
    assert [p.seed for p in pages] == [40, 41, 42]
    assert pages[2].image.tobytes() == render_page(42, degrade=False).image.tobytes()


def test_degrade_keeps_the_text(clean_pages, degraded_pages):
    for s in SEEDS:
        assert [ln.text for ln in clean_pages[s].lines] == [ln.text for ln in degraded_pages[s].lines]
    applied = {d["name"] for p in degraded_pages.values() for d in p.meta["degradations"]}
    assert {"stamp", "skew", "noise", "jpeg"} <= applied
    assert all(p.meta["degradations"] == [] for p in clean_pages.values())


# -- boxes ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["clean_pages", "degraded_pages"])
def test_boxes_inside_image_and_on_ink(which, request):
    for page in request.getfixturevalue(which).values():
        h, w = page.image.shape[:2]
        q = np.array([ln.box for ln in page.lines])
        assert (q[..., 0] >= 0).all() and (q[..., 0] <= w).all() and (q[..., 1] >= 0).all() and (q[..., 1] <= h).all()
        dark = 255 - _gray(page)
        dark -= np.median(dark)  # darkness above the paper's
        inside = np.zeros((h, w), np.uint8)
        cv2.fillPoly(inside, [np.round(b).astype(np.int32) for b in q], 1)
        assert dark[inside == 1].mean() > 3 * max(dark[inside == 0].mean(), 0) + 10
        for ln in page.lines:  # every box holds ink of its own
            x0, y0, x1, y1 = (int(v) for v in np.round(_aabb(ln)))
            assert dark[y0:y1, x0:x1].max() > 60, ln.text


def test_clean_boxes_are_tight(clean_pages):
    """On a clean page the box is the ink's extent: ink reaches each side, and the pixel row or column
    just outside each side is fainter than the box's own edge (anti-aliasing fringes only)."""
    for page in clean_pages.values():
        dark = 255 - _gray(page)
        paper = np.median(dark)
        for ln in page.lines:
            x0, y0, x1, y1 = (int(v) for v in _aabb(ln))
            box = dark[y0:y1, x0:x1]
            edges = (box[0], box[-1], box[:, 0], box[:, -1])
            outside = (dark[y0 - 1, x0:x1], dark[y1, x0:x1], dark[y0:y1, x0 - 1], dark[y0:y1, x1])
            for edge, out in zip(edges, outside):
                assert edge.max() > paper + 20, ln.text
                assert out.max() <= edge.max(), ln.text


@pytest.mark.parametrize("which", ["clean_pages", "degraded_pages"])
def test_lines_do_not_overlap(which, request):
    for page in request.getfixturevalue(which).values():
        quads = [np.array(ln.box, np.float32) for ln in page.lines]
        boxes = np.array([_aabb(ln) for ln in page.lines])
        for i in range(len(quads)):
            near = np.nonzero((boxes[:, 0] < boxes[i, 2]) & (boxes[i, 0] < boxes[:, 2])
                              & (boxes[:, 1] < boxes[i, 3]) & (boxes[i, 1] < boxes[:, 3]))[0]
            for j in near[near > i]:
                area, _ = cv2.intersectConvexConvex(quads[i], quads[j])
                assert area < 1.0, (page.seed, page.lines[i].text, page.lines[j].text)


def test_stamp_text_is_not_ground_truth(degraded_pages):
    stamped = [p for p in degraded_pages.values() if any(d["name"] == "stamp" for d in p.meta["degradations"])]
    assert stamped
    for page in stamped:
        texts = {ln.text for ln in page.lines}
        assert not texts & {"收费专用章", "财务专用章", "票据监制章", "财政部监制", "费用清单专用章"}


# -- rotation ------------------------------------------------------------------------------------


@pytest.mark.parametrize("degrade", [False, True])
@pytest.mark.parametrize("rotation", [90, 180, 270])
def test_rotation_is_exact(rotation, degrade):
    seed = 3
    up = render_page(seed, degrade=degrade)
    turned = render_page(seed, rotation=rotation, degrade=degrade)
    assert turned.rotation == rotation
    assert np.array_equal(turned.image, np.rot90(up.image, k=-rotation // 90))
    h, w = up.image.shape[:2]
    for a, b in zip(up.lines, turned.lines, strict=True):
        assert a.text == b.text
        p, q = np.array(a.box), np.array(b.box)
        x, y = p[:, 0], p[:, 1]
        expect = {90: np.stack([h - y, x], 1), 180: np.stack([w - x, h - y], 1), 270: np.stack([y, w - x], 1)}
        np.testing.assert_allclose(q, expect[rotation], atol=1e-9)
    if rotation == 180 and not degrade:  # first point = text's own top-left = image box's bottom-right
        for ln in turned.lines:
            x0, y0, x1, y1 = _aabb(ln)
            assert ln.box[0] == (x1, y1) and ln.box[2] == (x0, y0)


def test_bad_rotation_is_refused():
    with pytest.raises(ValueError):
        render_page(0, rotation=45)


# -- content -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, words",
    [
        ("0", "零元整"),
        ("0.05", "伍分"),
        ("0.5", "伍角"),
        ("0.55", "伍角伍分"),
        ("1", "壹元整"),
        ("10", "壹拾元整"),
        ("15.2", "壹拾伍元贰角"),
        ("100", "壹佰元整"),
        ("101", "壹佰零壹元整"),
        ("110", "壹佰壹拾元整"),
        ("1001.01", "壹仟零壹元零壹分"),
        ("1010", "壹仟零壹拾元整"),
        ("1234.56", "壹仟贰佰叁拾肆元伍角陆分"),
        ("1234.06", "壹仟贰佰叁拾肆元零陆分"),
        ("10000", "壹万元整"),
        ("10001", "壹万零壹元整"),
        ("105000", "壹拾万伍仟元整"),
        ("120034.5", "壹拾贰万零叁拾肆元伍角"),
        ("1000000", "壹佰万元整"),
        ("100000001", "壹亿零壹元整"),
        ("100010000", "壹亿零壹万元整"),
        ("2.005", "贰元零壹分"),  # rounded half-up to the fen
    ],
)
def test_amount_in_words(value, words):
    assert amount_in_words(Decimal(value)) == words


def test_amount_in_words_refuses_negative():
    with pytest.raises(ValueError):
        amount_in_words(Decimal(-1))


def test_amounts_add_up(clean_pages):
    for page in clean_pages.values():
        f = page.meta["fields"]
        total = Decimal(f["total"])
        assert sum(Decimal(i["amount"]) for i in f["items"]) == total
        assert sum(Decimal(v) for v in f["categories"].values()) == total
        pay = {k: Decimal(v) for k, v in f["payments"].items()}
        assert pay["医保统筹基金支付"] + pay["个人自付"] + pay["个人自费"] == total
        assert pay["医保统筹基金支付"] + pay["个人账户支付"] + pay["个人现金支付"] == total
        assert any(f["total_words"] in ln.text for ln in page.lines)  # 大写 is printed


@pytest.fixture(scope="module")
def ppocr_v4_characters() -> set[str]:
    try:
        dist = md.distribution("rapidocr-onnxruntime")
    except md.PackageNotFoundError:
        pytest.skip("rapidocr-onnxruntime (the PP-OCRv4 model wheel) is not installed")
    import openvino as ov

    onnx = next(dist.locate_file(f) for f in dist.files if str(f).endswith("ch_PP-OCRv4_rec_infer.onnx"))
    chars = ov.Core().read_model(onnx).get_rt_info(["framework", "character"]).astype(str).splitlines()
    return set(chars) | {" "}


def test_lexicon_is_in_ppocr_v4_charset(ppocr_v4_characters):
    assert not lexicon.alphabet() - ppocr_v4_characters
    assert {c.category for c in lexicon.chargeables()} <= set(lexicon.CATEGORIES)


def test_text_is_in_ppocr_v4_charset(ppocr_v4_characters):
    chars = ppocr_v4_characters
    seen: set[str] = set()
    for page in sample_pages(200, seed=1000, degrade=False):
        for ln in page.lines:
            seen.update(ln.text)
    missing = seen - chars
    assert not missing, sorted(missing)
    assert len(seen) > 500  # a varied vocabulary, not a handful of words


# -- lines and fonts -----------------------------------------------------------------------------


def test_render_line():
    img, text = render_line(7)
    img2, text2 = render_line(7)
    assert text == text2 and img.tobytes() == img2.tobytes()
    assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3
    clean, given = render_line(3, "阿莫西林胶囊0.25g×24粒", degrade=False)
    assert given == "阿莫西林胶囊0.25g×24粒"
    dark = 255 - cv2.cvtColor(clean, cv2.COLOR_RGB2GRAY).astype(np.float32)
    h, w = dark.shape
    assert dark.max() > 100 and w > 4 * h  # a line, tight around its ink
    rows, cols = np.nonzero(dark > dark.min() + 40)
    assert rows.min() <= h // 3 and rows.max() >= h - h // 3 - 1 and cols.min() <= h // 2 and cols.max() >= w - h // 2


def test_render_line_refuses_text_no_font_draws():
    with pytest.raises(ValueError):
        render_line(0, "\U0001f600")


def test_fonts_found_and_selectable():
    fonts = cjk_fonts()
    assert fonts and all(Path(f).is_file() for f in fonts)
    kai = [f for f in fonts if "ukai" in Path(f).name]
    if not kai:
        pytest.skip("fonts-arphic-ukai not installed")
    page = render_page(2, fonts=kai, degrade=False)
    assert page.meta["fonts"] == ["AR PL UKai CN"]


def test_no_cjk_font_names_the_packages(monkeypatch, tmp_path):
    monkeypatch.setattr(synth_fonts, "FONT_DIRS", (tmp_path,))
    synth_fonts._system_fonts.cache_clear()
    try:
        with pytest.raises(RuntimeError, match="fonts-noto-cjk"):
            cjk_fonts()
    finally:
        synth_fonts._system_fonts.cache_clear()

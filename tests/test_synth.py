"""ocr.synth: rendered bills with exact ground truth (real rendering, real fonts)."""

from __future__ import annotations

import importlib.metadata as md
import json
from decimal import Decimal
from pathlib import Path

import cv2
import numpy as np
import pytest

from ocr.synth import (
    GtLine,
    RenderedPage,
    amount_in_words,
    cjk_fonts,
    lexicon,
    render_document,
    render_line,
    render_page,
    sample_pages,
)
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


# -- VAT invoices ----------------------------------------------------------------------------------

VAT_SEEDS = range(7200, 7206)


def test_vat_invoice_ground_truth_adds_up_and_is_printed():
    rates = set()
    for seed in VAT_SEEDS:
        page = render_page(seed, kind="vat_invoice", degrade=False)
        f = page.meta["fields"]
        assert page.meta["template"] == "vat_invoice" and f["kind"] == "vat_invoice"
        assert page.meta["dropped_items"] == 0
        texts = {ln.text for ln in page.lines}
        printed = "".join(ln.text for ln in page.lines)
        for it in f["items"]:
            q, p, a, t = (Decimal(it[k]) for k in ("qty", "price", "amount", "tax"))
            assert (q * p).quantize(Decimal("0.01"), "ROUND_HALF_UP") == a
            rate = Decimal(0) if it["rate"] == "免税" else Decimal(it["rate"].rstrip("%")) / 100
            assert (a * rate).quantize(Decimal("0.01"), "ROUND_HALF_UP") == t
            assert it["name"] in texts and it["rate"] in texts  # printed whole, in its own cell
            rates.add(it["rate"])
        amount, tax, total = Decimal(f["amount_excl_tax"]), Decimal(f["tax"]), Decimal(f["total"])
        assert amount == sum(Decimal(i["amount"]) for i in f["items"])
        assert tax == sum(Decimal(i["tax"]) for i in f["items"])
        assert total == amount + tax
        assert f["total_words"] in texts and f"{total:.2f}" in printed
        for key in ("发票代码", "发票号码", "开票日期", "校验码"):
            assert f["header"][key] in printed
        assert f["buyer"]["名称"] in printed and f["seller"]["名称"] in printed
    assert {"13%", "3%"} <= rates


def test_vat_invoice_only_when_asked_for():
    assert all(render_page(s, degrade=False).meta["template"] != "vat_invoice" for s in range(12))
    with pytest.raises(ValueError):
        render_page(0, kind="receipt")


# -- photo damage ----------------------------------------------------------------------------------

PHOTO_SEEDS = range(7200, 7212)


@pytest.fixture(scope="module")
def photo_pages() -> dict[int, RenderedPage]:
    return {s: render_page(s, photo=True) for s in PHOTO_SEEDS}


def _photo_effects(page: RenderedPage) -> set[str]:
    return {d["name"] for d in page.meta["degradations"]} & {"fold", "shadow", "angled_shot"}


def test_photo_damage_is_drawn_and_keeps_the_text(photo_pages):
    seen = set().union(*(_photo_effects(p) for p in photo_pages.values()))
    assert seen == {"fold", "shadow", "angled_shot"}
    for seed, page in photo_pages.items():
        plain = render_page(seed)
        assert [ln.text for ln in page.lines] == [ln.text for ln in plain.lines]
        if not _photo_effects(page):  # photo damage has streams of its own: the scan is untouched
            assert page.image.tobytes() == plain.image.tobytes()


def test_photo_boxes_inside_image_and_on_ink(photo_pages):
    for page in photo_pages.values():
        h, w = page.image.shape[:2]
        q = np.array([ln.box for ln in page.lines])
        assert (q >= 0).all() and (q[..., 0] <= w).all() and (q[..., 1] <= h).all()
        gray = _gray(page)
        for ln in page.lines:
            x0, y0, x1, y1 = (int(v) for v in np.round(_aabb(ln)))
            pad = max(3, (y1 - y0) // 2)
            around = gray[max(0, y0 - pad):y1 + pad, max(0, x0 - pad):x1 + pad]
            assert np.percentile(around, 90) - gray[y0:y1, x0:x1].min() > 50, (page.seed, ln.text)  # ink on paper


def _blocks() -> tuple[np.ndarray, np.ndarray]:
    """A page of black rectangles on white, and their quads: ink whose extent is known exactly."""
    img = np.full((600, 400, 3), 255, np.uint8)
    quads = []
    for y in range(40, 560, 60):
        for x in (30, 220):
            img[y:y + 20, x:x + 150] = 0
            quads.append([[x, y], [x + 150, y], [x + 150, y + 20], [x, y + 20]])
    return img, np.array(quads, np.float64)


def _ink_fits(img: np.ndarray, quads: np.ndarray, px: int) -> None:
    """``px`` pixels inside every quad all is dark; on a ring ``px`` pixels outside it, all is light."""
    gray = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
    for q in quads:
        mask = np.zeros(gray.shape, np.uint8)
        cv2.fillPoly(mask, [np.round((q - 0.5) * 16).astype(np.int32)], 1, shift=4)  # sub-pixel corners
        k = np.ones((2 * px + 1, 2 * px + 1), np.uint8)
        inner = cv2.erode(mask, k)
        ring = cv2.dilate(mask, k) - cv2.dilate(mask, np.ones((2 * px - 1, 2 * px - 1), np.uint8))
        assert inner.any() and gray[inner == 1].max() < 120, q
        assert gray[ring == 1].min() > 140, q


def test_fold_and_angled_shot_move_boxes_exactly():
    import random

    from ocr.synth import degrade as dg

    img, quads = _blocks()
    shifted = 0
    for seed in range(12):
        out, q, params = dg.fold(img, quads, random.Random(seed))
        _ink_fits(out, q, 1)  # whole-pixel shifts: exact to the pixel
        shifted += params["shift"] != [0, 0]
        out, q, params = dg.angled_shot(img, quads, random.Random(seed), np.random.default_rng(seed))
        assert out.shape[0] > img.shape[0] and out.shape[1] > img.shape[1]  # the surface shows around the page
        _ink_fits(out, q, 2)  # resampled: edges blur over a pixel
    assert shifted  # some creases fall between lines and shift the far side


# -- item names from a catalogue (read at render time, never embedded) ---------------------------

CATALOG = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "catalog"  # ../shared/data/catalog


@pytest.fixture(scope="module")
def catalogue_names():
    if not CATALOG.is_dir():
        pytest.skip(f"example catalogue not found at {CATALOG} (../shared/data/catalog)")
    from ocr.synth.catalogue import load_catalogue_names

    return load_catalogue_names(CATALOG)


def _same_bill_but_names(a: dict, b: dict) -> None:
    """Everything but the item names (and the codes only the catalogue gives) is the same bill."""
    assert len(a["items"]) == len(b["items"])
    for x, y in zip(a["items"], b["items"]):
        assert {k: v for k, v in x.items() if k not in ("name", "code")} == {k: v for k, v in y.items() if k != "name"}
    assert {k: v for k, v in a.items() if k != "items"} == {k: v for k, v in b.items() if k != "items"}


@pytest.mark.parametrize("seed", [9300, 9301])
def test_catalogue_names_on_itemised_lists(catalogue_names, seed):
    page = render_page(seed, kind="itemised", degrade=False, catalogue=CATALOG)
    items = page.meta["fields"]["items"]
    assert len(items) >= 8 and page.meta["dropped_items"] == 0
    pairs = {p for pool in catalogue_names.by_category.values() for p in pool}
    printed = {ln.text for ln in page.lines}
    for item in items:
        assert item["name"] in catalogue_names.names and (item["code"], item["name"]) in pairs
        assert item["name"] in printed  # the truth is what the page prints: no name was cut to fit
    # its own stream: the same bill as without the catalogue, other names only
    _same_bill_but_names(page.meta["fields"], render_page(seed, kind="itemised", degrade=False).meta["fields"])


def test_catalogue_names_on_a_document(catalogue_names):
    doc = render_document(2, degrade=False, catalogue=CATALOG)
    assert all(i["name"] in catalogue_names.names for i in doc.meta["fields"]["items"])
    for page in doc.pages:
        printed = {ln.text for ln in page.lines}
        assert all(i["name"] in printed for i in page.meta["fields"]["items"])
    _same_bill_but_names(doc.meta["fields"], render_document(2, degrade=False).meta["fields"])


@pytest.mark.parametrize("seed", [9001, 9200])
def test_without_catalogue_nothing_changes(catalogue_names, seed):
    """No catalogue is the lexicon's page, pixel for pixel (the option draws from a stream of its own);
    with one, a receipt (whose grid prints categories, not items) keeps its printed text."""
    a, b = render_page(seed, photo=True), render_page(seed, photo=True, catalogue=None)
    assert a.image.tobytes() == b.image.tobytes() and a.lines == b.lines and a.meta == b.meta
    assert all("code" not in i for i in a.meta["fields"]["items"])
    c = render_page(seed, photo=True, catalogue=CATALOG)
    if a.meta["template"] != "itemised":
        assert [ln.text for ln in c.lines] == [ln.text for ln in a.lines]
        assert c.image.tobytes() == a.image.tobytes()

"""ocr.readers / ocr.errors: every format, mode, limit and kind of bad input, on files made here.

Nothing is mocked and no binary fixture is committed: images are written with Pillow, PDFs are
written by hand (a few lines of PDF syntax with a Helvetica text object) or with pypdfium2.
"""

from __future__ import annotations

import ctypes
import hashlib
import io
import logging
import pickle
import random
import struct
import time
import warnings
import zlib

import numpy as np
import pypdfium2 as pdfium
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from pdfs import make_pdf, text
from PIL import Image

from core.settings import Settings
from ocr.errors import (
    CorruptFile,
    Deadline,
    EmptyFile,
    InputError,
    LimitExceeded,
    PageTimeout,
    UnsupportedFormat,
)
from ocr.readers import SUPPORTED_FORMATS, detect_format, open_document, read_pages

# Pillow warns (UserWarning) about the damaged metadata these tests feed it on purpose.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:PIL")

RED, BLUE, WHITE = (255, 0, 0), (0, 0, 255), (255, 255, 255)
EXT = {"jpeg": "jpg", "png": "png", "bmp": "bmp", "webp": "webp", "tiff": "tif"}


# --- makers ----------------------------------------------------------------------------------


def marked_image(w: int = 64, h: int = 40) -> Image.Image:
    """White, with a red block in the top-left corner (so rotations can be seen)."""
    im = Image.new("RGB", (w, h), WHITE)
    im.paste(RED, (0, 0, w // 4, h // 4))
    return im


def encode(im: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format=fmt.upper(), **kw)
    return buf.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that *claims* width x height but carries a few bytes of pixels: a decompression bomb's header."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\0" * 4096)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


BILL_TEXT = (
    text(72, 700, 24, "Total: 1234.50")
    + text(72, 650, 12, "Line two")
    + text(372, 650, 12, "Amount 10.00")  # same baseline, a column away: a line of its own
)
RECT = b"0 0 0 rg 100 500 200 100 re f\n"  # black, x 100..300, y 500..600 (points, origin bottom-left)


def ink_box(image: np.ndarray, around: tuple[float, float, float, float], margin: int = 12):
    """Bounding box (l, t, r, b) of dark pixels near a box."""
    l, t, r, b = (int(v) for v in around)
    y0, x0 = max(0, t - margin), max(0, l - margin)
    ys, xs = np.nonzero(image[y0 : b + margin, x0 : r + margin].min(axis=2) < 128)
    assert len(xs), f"no ink near {around}"
    return x0 + xs.min(), y0 + ys.min(), x0 + xs.max() + 1, y0 + ys.max() + 1


def assert_box_fits_ink(image: np.ndarray, line, tol: float = 3) -> None:
    il, it, ir, ib = ink_box(image, (line.left, line.top, line.right, line.bottom))
    assert line.left - tol <= il and ir <= line.right + tol, (line, (il, it, ir, ib))
    assert line.top - tol <= it and ib <= line.bottom + tol, (line, (il, it, ir, ib))
    # tight enough to be useful: not more than twice the ink's height
    assert line.bottom - line.top <= 2 * (ib - it) + tol


def expect(exc_type, source, **kw) -> InputError:
    with pytest.raises(exc_type) as info:
        read_pages(source, **kw)
    return info.value


# --- every image format ------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["jpeg", "png", "bmp", "webp", "tiff"])
def test_reads_each_image_format(tmp_path, fmt):
    data = encode(marked_image(), fmt, **({"quality": 95} if fmt in ("jpeg", "webp") else {}))
    path = tmp_path / f"bill.{EXT[fmt]}"
    path.write_bytes(data)

    doc = open_document(path)
    assert (doc.format, doc.page_count) == (fmt, 1)
    assert doc.document.doc_id == hashlib.sha256(data).hexdigest()
    assert doc.document.kind.value == "image" and doc.document.media_type == f"image/{fmt}"
    assert doc.document.size_bytes == len(data) and doc.document.source_uri == str(path)

    (page,) = doc.pages()
    assert page.index == 0 and page.text_lines is None
    assert page.image.shape == (40, 64, 3) and page.image.dtype == np.uint8
    tol = 40 if fmt in ("jpeg", "webp") else 0
    assert np.abs(page.image[3, 3].astype(int) - RED).max() <= tol
    assert np.abs(page.image[30, 50].astype(int) - WHITE).max() <= tol


def test_multipage_tiff_is_read_lazily_page_by_page(tmp_path):
    frames = [Image.new("RGB", (30 + 10 * i, 20), c) for i, c in enumerate([RED, BLUE, WHITE])]
    path = tmp_path / "scan.tiff"
    frames[0].save(path, save_all=True, append_images=frames[1:], compression="tiff_lzw", dpi=(300, 300))

    doc = open_document(path)
    assert (doc.format, doc.page_count) == ("tiff", 3)
    pages = doc.pages()
    assert iter(pages) is pages  # an iterator, not a list: one decoded page at a time
    first = next(pages)
    assert (first.index, first.image.shape, tuple(first.image[0, 0])) == (0, (20, 30, 3), RED)
    assert first.dpi == pytest.approx(300)
    rest = list(pages)
    assert [(p.index, p.width, tuple(p.image[5, 5])) for p in rest] == [(1, 40, BLUE), (2, 50, WHITE)]
    assert len(list(doc.pages())) == 3  # pages() can be called again


def test_exif_orientation_is_applied():
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: rotate 90 degrees clockwise to view
    data = encode(marked_image(64, 40), "jpeg", exif=exif.tobytes(), quality=95)
    (page,) = read_pages(data, name="phone.jpg")
    assert page.image.shape == (64, 40, 3)
    # the stored top-left block ends up top-right
    assert page.image[3, 36, 0] > 200 and page.image[3, 36, 1] < 60
    assert page.image[3, 3].min() > 200


@pytest.mark.parametrize(
    "make, fmt, checks",
    [
        # 1-bit, grayscale and palette
        (lambda: Image.new("1", (8, 8), 1), "png", {(0, 0): WHITE}),
        (lambda: Image.new("L", (8, 8), 77), "bmp", {(0, 0): (77, 77, 77)}),
        (lambda: marked_image(8, 8).convert("P"), "png", {(0, 0): RED, (7, 7): WHITE}),
        # CMYK (JPEG and TIFF)
        (lambda: Image.new("CMYK", (8, 8), (0, 255, 255, 0)), "jpeg", {(4, 4): RED}),
        (lambda: Image.new("CMYK", (8, 8), (255, 255, 0, 0)), "tiff", {(4, 4): BLUE}),
        # alpha is flattened on white paper
        (lambda: _with_alpha("RGBA"), "png", {(0, 0): WHITE, (7, 7): BLUE}),
        (lambda: _with_alpha("LA"), "png", {(0, 0): WHITE, (7, 7): (29, 29, 29)}),  # L of blue is 29
        (lambda: _with_alpha("RGBA"), "webp", {(0, 0): WHITE, (7, 7): BLUE}),
        (lambda: _palette_with_transparency(), "png", {(0, 0): WHITE, (7, 7): RED}),
        # 16-bit grayscale is scaled, not clipped to white as Pillow's convert() would
        (lambda: Image.fromarray(np.array([[0, 16384, 32768, 65535]] * 2, dtype=np.uint16)), "png",
         {(0, 0): (0, 0, 0), (0, 1): (64, 64, 64), (0, 2): (128, 128, 128), (0, 3): WHITE}),
        (lambda: Image.fromarray(np.array([[0, 32768, 65535]] * 2, dtype=np.uint16)), "tiff",
         {(0, 0): (0, 0, 0), (0, 1): (128, 128, 128), (0, 2): WHITE}),
    ],
    ids=["1bit", "L", "P", "cmyk-jpeg", "cmyk-tiff", "rgba", "la", "rgba-webp", "p-transparency", "i16-png",
         "i16-tiff"],
)
def test_every_mode_becomes_rgb(make, fmt, checks):
    kw = {"lossless": True} if fmt == "webp" else {"quality": 95} if fmt == "jpeg" else {}
    (page,) = read_pages(encode(make(), fmt, **kw))
    assert page.image.dtype == np.uint8 and page.image.ndim == 3 and page.image.shape[2] == 3
    tol = 12 if fmt == "jpeg" else 1
    for (y, x), rgb in checks.items():
        assert np.abs(page.image[y, x].astype(int) - rgb).max() <= tol, ((y, x), page.image[y, x], rgb)


def _with_alpha(mode: str) -> Image.Image:
    im = Image.new("RGBA", (8, 8), (0, 0, 0, 0))  # transparent black
    im.paste((0, 0, 255, 255), (4, 4, 8, 8))
    return im if mode == "RGBA" else im.convert("LA")


def _palette_with_transparency() -> Image.Image:
    im = Image.new("P", (8, 8), 1)
    im.putpalette([0, 0, 0, *RED])
    im.putpixel((0, 0), 0)
    im.info["transparency"] = 0  # palette index 0 is transparent
    return im


# --- PDF ---------------------------------------------------------------------------------------


def test_pdf_page_is_rendered_at_pdf_dpi_without_text_layer(tmp_path):
    path = tmp_path / "scan.pdf"
    path.write_bytes(make_pdf([{"content": RECT}, {"content": RECT, "size": (300, 200)}]))
    doc = open_document(path, settings=Settings(pdf_dpi=100))
    assert (doc.format, doc.page_count) == ("pdf", 2)
    assert doc.document.kind.value == "pdf" and doc.document.media_type == "application/pdf"

    pages = doc.pages()
    first = next(pages)
    s = 100 / 72
    assert first.image.shape == (round(792 * s + 0.5), round(612 * s + 0.5), 3) and first.dpi == 100
    assert first.text_lines is None
    # the black rectangle: x 100..300 pt, y 500..600 pt from the bottom
    l, t, r, b = ink_box(first.image, (0, 0, first.width, first.height), margin=0)
    assert (l, t, r, b) == pytest.approx((100 * s, (792 - 600) * s, 300 * s, (792 - 500) * s), abs=2)
    assert tuple(first.image[0, 0]) == WHITE
    second = next(pages)
    assert second.image.shape == (278, 417, 3)


def test_pdf_text_layer_comes_back_as_lines_where_the_text_is():
    (page,) = read_pages(make_pdf([{"content": BILL_TEXT + RECT}]), settings=Settings(pdf_dpi=144))
    assert page.image.shape == (1584, 1224, 3)
    lines = {line.text: line for line in page.text_lines}
    assert set(lines) == {"Total: 1234.50", "Line two", "Amount 10.00"}  # columns are separate lines
    for line in lines.values():
        assert line.confidence == 1.0
        assert_box_fits_ink(page.image, line)
    total = lines["Total: 1234.50"]
    assert total.left == pytest.approx(144, abs=2)  # 72 pt at 144 dpi
    assert total.bottom == pytest.approx((792 - 700) * 2 + 24 * 0.25 * 2, abs=8)  # baseline + descent


@pytest.mark.parametrize("rotate", [90, 180, 270])
def test_pdf_page_rotation_is_honoured_for_image_and_text(rotate):
    page_spec = {"content": BILL_TEXT, "rotate": rotate, "origin": (30, 40)}  # and a MediaBox off the origin
    (page,) = read_pages(make_pdf([page_spec]), settings=Settings(pdf_dpi=72))
    assert page.image.shape == ((612, 792, 3) if rotate in (90, 270) else (792, 612, 3))
    assert {line.text for line in page.text_lines} == {"Total: 1234.50", "Line two", "Amount 10.00"}
    for line in page.text_lines:
        assert_box_fits_ink(page.image, line, tol=2)


def test_pdf_made_with_pdfium_text_objects_is_read_from_its_text_layer(tmp_path):
    pdf = pdfium.PdfDocument.new()
    page = pdf.new_page(595, 842)
    obj = pdfium.raw.FPDFPageObj_NewTextObj(pdf.raw, b"Helvetica", 14.0)
    s = "PATIENT Jane Doe".encode("utf-16-le") + b"\0\0"
    pdfium.raw.FPDFText_SetText(obj, ctypes.cast(s, ctypes.POINTER(pdfium.raw.FPDF_WCHAR)))
    pdfium.raw.FPDFPageObj_Transform(obj, 1, 0, 0, 1, 72, 760)
    pdfium.raw.FPDFPage_InsertObject(page.raw, obj)
    pdfium.raw.FPDFPage_GenerateContent(page.raw)
    path = tmp_path / "generated.pdf"
    pdf.save(path)
    pdf.close()

    (out,) = read_pages(path, settings=Settings(pdf_dpi=72))
    (line,) = out.text_lines
    assert line.text == "PATIENT Jane Doe"
    assert_box_fits_ink(out.image, line, tol=2)


def test_whitespace_only_text_layer_means_ocr():
    (page,) = read_pages(make_pdf([{"content": text(72, 700, 12, "     ") + RECT}]), settings=Settings(pdf_dpi=72))
    assert page.text_lines is None


def test_invisible_text_layer_of_a_scanned_pdf_means_ocr():
    """A scanner's hidden OCR layer (text render mode 3) is not trusted: the page image is OCR'd."""
    hidden = b"q BT 3 Tr /F1 12 Tf 72 700 Td (scanner guess) Tj ET Q\n"  # Tr persists after ET: scope it
    (page,) = read_pages(make_pdf([{"content": hidden + RECT}]), settings=Settings(pdf_dpi=72))
    assert page.text_lines is None
    (mixed,) = read_pages(make_pdf([{"content": hidden + text(72, 650, 12, "Printed")}]), settings=Settings(pdf_dpi=72))
    assert [line.text for line in mixed.text_lines] == ["Printed"]


def test_encrypted_pdf_is_reported_as_such():
    err = expect(CorruptFile, make_pdf([{"content": BILL_TEXT}], encrypt=True), name="locked.pdf")
    assert err.reason == "corrupt" and "encrypted" in str(err) and "locked.pdf" in str(err)


# --- limits ------------------------------------------------------------------------------------


def test_max_file_bytes_for_bytes_and_for_a_path_checked_before_reading(tmp_path):
    data = encode(marked_image(), "png")
    err = expect(LimitExceeded, data, name="big.png", settings=Settings(max_file_bytes=len(data) - 1))
    assert (err.limit, err.value, err.maximum, err.reason) == ("max_file_bytes", len(data), len(data) - 1,
                                                                "limit:max_file_bytes")
    assert "big.png" in str(err) and "max_file_bytes" in str(err)

    huge = tmp_path / "huge.pdf"  # 20 GB, sparse: reading it would take a very long time
    with huge.open("wb") as f:
        f.write(b"%PDF-1.4\n")
        f.truncate(20 * 1024**3)
    started = time.monotonic()
    err = expect(LimitExceeded, huge)
    assert err.limit == "max_file_bytes" and err.value == 20 * 1024**3
    assert time.monotonic() - started < 1


@pytest.mark.parametrize("fmt", ["pdf", "tiff"])
def test_max_pages_is_checked_before_any_page_is_decoded(fmt):
    if fmt == "pdf":
        data = make_pdf([{"content": RECT}] * 3)
    else:
        frames = [Image.new("RGB", (8, 8), c) for c in (RED, BLUE, WHITE)]
        data = encode(frames[0], "tiff", save_all=True, append_images=frames[1:])
    with pytest.raises(LimitExceeded) as info:
        open_document(data, name=f"three.{fmt}", settings=Settings(max_pages=2))
    assert (info.value.limit, info.value.value, info.value.maximum) == ("max_pages", 3, 2)
    assert len(read_pages(data, settings=Settings(max_pages=3))) == 3


@pytest.mark.parametrize("fmt", ["png", "jpeg", "bmp", "webp", "tiff", "pdf"])
def test_max_page_pixels_from_the_header(fmt):
    if fmt == "pdf":
        data, pixels = make_pdf([{"content": RECT, "size": (100, 50)}]), 100 * 50
    else:
        data, pixels = encode(marked_image(100, 50), fmt), 100 * 50
    with pytest.raises(LimitExceeded) as info:
        open_document(data, settings=Settings(max_page_pixels=pixels - 1, pdf_dpi=72))
    assert (info.value.limit, info.value.value, info.value.maximum) == ("max_page_pixels", pixels, pixels - 1)
    assert "MEDKG_MAX_PAGE_PIXELS" in str(info.value)


def test_pdf_page_pixels_scale_with_dpi():
    data = make_pdf([{"content": RECT, "size": (72, 72)}])  # one inch square
    assert read_pages(data, settings=Settings(pdf_dpi=100, max_page_pixels=100 * 100))[0].image.shape == (100, 100, 3)
    err = expect(LimitExceeded, data, settings=Settings(pdf_dpi=101, max_page_pixels=100 * 100))
    assert err.value == 101 * 101


@pytest.mark.parametrize("side", [8_000, 100_000])  # ours (64 MP > 40 MP), and past Pillow's own guard
def test_decompression_bomb_png_header_is_a_limit_not_a_crash(side):
    started = time.monotonic()
    err = expect(LimitExceeded, png_header_only(side, side), name="bomb.png", settings=Settings())
    assert (err.limit, err.value, err.reason) == ("max_page_pixels", side * side, "limit:max_page_pixels")
    assert time.monotonic() - started < 1


def test_pillow_bomb_warning_turned_into_an_error_is_a_limit_too():
    side = 10_000  # 100 MP: over Image.MAX_IMAGE_PIXELS (89 MP), under our (raised) limit
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        err = expect(LimitExceeded, png_header_only(side, side), settings=Settings(max_page_pixels=200_000_000))
    assert err.limit == "max_page_pixels" and err.value == side * side
    assert err.maximum == Image.MAX_IMAGE_PIXELS and "Pillow" in str(err)


def test_bomb_page_inside_a_multipage_tiff():
    frames = [Image.new("L", (8, 8)), Image.new("L", (4000, 20))]
    data = encode(frames[0], "tiff", save_all=True, append_images=frames[1:])
    err = expect(LimitExceeded, data, settings=Settings(max_page_pixels=50_000))
    assert err.limit == "max_page_pixels" and err.value == 80_000 and "page 2" in str(err)


@pytest.mark.parametrize("data", [encode(marked_image(), "png"), make_pdf([{"content": BILL_TEXT}])],
                         ids=["png", "pdf"])
def test_page_timeout(data):
    doc = open_document(data, name="slow", settings=Settings(page_timeout_s=1e-9))  # opening is not a page
    with pytest.raises(PageTimeout) as info:
        next(doc.pages())
    err = info.value
    assert isinstance(err, LimitExceeded) and err.reason == "limit:page_timeout_s" and err.limit == "page_timeout_s"
    assert "slow page 1" in str(err) and "page_timeout_s" in str(err)


def test_deadline():
    d = Deadline(60, "x.pdf page 2")
    assert 59 < d.remaining() <= 60 and not d.expired()
    d.check()
    late = Deadline(0.001, "x.pdf page 2")
    time.sleep(0.002)
    assert late.remaining() == 0 and late.expired()
    with pytest.raises(PageTimeout, match="x.pdf page 2"):
        late.check()


# --- bad content -------------------------------------------------------------------------------


def test_empty_file(tmp_path):
    (tmp_path / "nothing.pdf").write_bytes(b"")
    err = expect(EmptyFile, tmp_path / "nothing.pdf")
    assert err.reason == "empty" and "nothing.pdf" in str(err)
    assert expect(EmptyFile, b"").reason == "empty"


@pytest.mark.parametrize("fmt", SUPPORTED_FORMATS)
def test_valid_magic_then_garbage_is_corrupt(fmt):
    good = make_pdf([{"content": RECT}]) if fmt == "pdf" else encode(marked_image(), fmt)
    magic = {"webp": good[:16], "bmp": good[:18], "pdf": b"%PDF-1.4\n"}.get(fmt, good[:8])
    garbage = magic + random.Random(fmt).randbytes(3000)
    assert detect_format(garbage) == fmt
    err = expect(CorruptFile, garbage, name=f"x.{fmt}")
    assert err.reason == "corrupt" and f"x.{fmt}" in str(err)


@pytest.mark.parametrize("fmt", SUPPORTED_FORMATS)
def test_truncated_file_is_corrupt(fmt):
    noise = Image.fromarray(np.random.default_rng(1).integers(0, 255, (120, 160, 3), dtype=np.uint8))
    good = make_pdf([{"content": BILL_TEXT + RECT}]) if fmt == "pdf" else encode(noise, fmt)
    assert read_pages(good)  # the whole file reads
    err = expect(CorruptFile, good[: len(good) // 2], name=f"half.{fmt}")
    assert "half." in str(err)


def test_mislabelled_but_valid_file_is_read_by_content(tmp_path, caplog):
    path = tmp_path / "photo.jpg"
    path.write_bytes(encode(marked_image(), "png"))
    with caplog.at_level(logging.WARNING, logger="ocr.readers"):
        doc = open_document(path)
    assert doc.format == "png" and doc.document.media_type == "image/png"
    assert "'.jpg'" in caplog.text and "png" in caplog.text
    assert read_pages(path)[0].image.shape == (40, 64, 3)


@pytest.mark.parametrize(
    "data, name, detected",
    [
        (b"Patient: Jane Doe\nTotal: 100.00\n", "bill.pdf", "plain text"),
        (b"<!DOCTYPE html><html><body>Login</body></html>", "bill.pdf", "HTML page"),
        (b"PK\x03\x04" + bytes(60), "bill.pdf", "ZIP archive"),
        (b"GIF89a" + bytes(60), "scan.png", "GIF image"),
        (bytes(range(256)) * 4, "scan.tiff", "unrecognised binary"),
        (b"Hello", "notes", "plain text"),
    ],
)
def test_unsupported_content_names_what_was_found_and_what_the_name_claims(data, name, detected):
    err = expect(UnsupportedFormat, data, name=name)
    assert err.reason == "unsupported-format" and detected in str(err) and name in str(err)
    ext = name.rpartition(".")[2] if "." in name else "(no extension)"
    assert ext in str(err)


def test_missing_path_and_directory(tmp_path):
    with pytest.raises(FileNotFoundError):
        open_document(tmp_path / "gone.png")
    assert expect(UnsupportedFormat, tmp_path).reason == "unsupported-format"


def test_errors_pickle_and_keep_their_fields():
    errors = [
        EmptyFile("a.png"),
        UnsupportedFormat("a.png", "content is text"),
        CorruptFile("a.png", "truncated"),
        LimitExceeded("a.png", "max_pages", 101, 100, "number of pages"),
        PageTimeout("a.png page 2", 3.5, 2.0),
    ]
    for err in errors:
        back = pickle.loads(pickle.dumps(err))
        assert type(back) is type(err) and str(back) == str(err) and back.reason == err.reason
        assert str(err).startswith("a.png")
    assert errors[4].limit == "page_timeout_s" and errors[4].value == 3.5 and errors[4].maximum == 2.0


# --- fuzz: whatever the bytes, only InputError ----------------------------------------------------

_FUZZ = Settings(max_page_pixels=2_000_000, max_pages=5, page_timeout_s=5)
_SEEDS = [encode(marked_image(), f) for f in ("jpeg", "png", "bmp", "webp", "tiff")]
_SEEDS.append(make_pdf([{"content": BILL_TEXT + RECT}]))


def _read_or_input_error(data: bytes) -> None:
    try:
        for page in read_pages(data, settings=_FUZZ):
            assert page.image.dtype == np.uint8 and page.image.ndim == 3
    except InputError:
        pass


@hsettings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from([b"", b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"II*\x00", b"MM\x00*", b"%PDF-1.7\n",
                        b"RIFF\x00\x00\x00\x00WEBPVP8 ", b"BM" + bytes(12) + b"\x28\x00\x00\x00"]),
       st.binary(max_size=600))
def test_fuzz_random_bytes_raise_only_input_errors(magic, tail):
    _read_or_input_error(magic + tail)


@hsettings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(range(len(_SEEDS))), st.data())
def test_fuzz_damaged_files_raise_only_input_errors(seed, data):
    buf = bytearray(_SEEDS[seed])
    for _ in range(data.draw(st.integers(1, 8))):
        buf[data.draw(st.integers(0, len(buf) - 1))] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(1, len(buf)))
    _read_or_input_error(bytes(buf[:cut]))

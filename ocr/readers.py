"""Read uploaded bills (images and PDFs) into upright RGB page images, one page at a time.

* The format is detected from the bytes, never from the file name; a valid file with the wrong
  extension is read by its content (with a warning).
* Every limit in :class:`core.settings.Settings` is checked as early as possible: the file size
  before reading, the page count before decoding any page, each page's pixel count from the
  header before decoding it, and ``page_timeout_s`` around each page's decode/render.
* Bad content only ever raises :class:`ocr.errors.InputError` subclasses. Problems with the
  path itself (missing file, permissions, a directory) stay ``OSError``\\ s.
* PDF pages are rendered with pdfium at ``pdf_dpi``; when a page has a real text layer its lines
  come back as ``PageImage.text_lines`` (in the rendered image's pixels) so OCR can be skipped.

pdfium is not thread-safe, so every pdfium call in this module holds ``_PDFIUM_LOCK``; the lock is
released between pages, never held while a page is handed to the caller.
"""

from __future__ import annotations

import ctypes
import io
import logging
import math
import re
import stat
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c
from PIL import Image, ImageOps, UnidentifiedImageError

from core.records import Document, DocumentKind, TextLine
from core.settings import Settings, get_settings
from ocr.errors import CorruptFile, Deadline, EmptyFile, InputError, LimitExceeded, UnsupportedFormat

log = logging.getLogger(__name__)

SUPPORTED_FORMATS = ("jpeg", "png", "bmp", "webp", "tiff", "pdf")
MEDIA_TYPES = {
    "jpeg": "image/jpeg",
    "png": "image/png",
    "bmp": "image/bmp",
    "webp": "image/webp",
    "tiff": "image/tiff",
    "pdf": "application/pdf",
}
_PIL_FORMATS = {"jpeg": "JPEG", "png": "PNG", "bmp": "BMP", "webp": "WEBP", "tiff": "TIFF"}
_EXTENSIONS = {
    ".jpg": "jpeg", ".jpeg": "jpeg", ".jpe": "jpeg", ".jfif": "jpeg", ".png": "png", ".bmp": "bmp",
    ".dib": "bmp", ".webp": "webp", ".tif": "tiff", ".tiff": "tiff", ".pdf": "pdf",
}  # fmt: skip
_MAGIC = (
    (b"\xff\xd8\xff", "jpeg"),
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"),
    (b"II+\x00", "tiff"),  # BigTIFF
    (b"MM\x00+", "tiff"),
)
_BMP_HEADER_SIZES = {12, 16, 40, 52, 56, 64, 108, 124}  # the DIB header size right after "BM" + 12 bytes
_OTHER_MAGIC = (  # recognised only to say what an unsupported file is
    (b"GIF8", "a GIF image"),
    (b"PK\x03\x04", "a ZIP archive (or .docx/.xlsx)"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"Rar!", "a RAR archive"),
    (b"7z\xbc\xaf", "a 7-Zip archive"),
    (b"\xd0\xcf\x11\xe0", "a legacy MS Office document (.doc/.xls)"),
    (b"%!PS", "a PostScript file"),
    (b"{\\rtf", "an RTF document"),
    (b"\x00\x00\x00\x0cjP  ", "a JPEG 2000 image"),
    (b"\xff\x4f\xff\x51", "a JPEG 2000 codestream"),
)

# pdfium may only be entered by one thread at a time, whichever document it works on.
_PDFIUM_LOCK = threading.RLock()


@dataclass(frozen=True, eq=False)
class PageImage:
    """One page, decoded: ``image`` is a writable H x W x 3 uint8 RGB array, upright per EXIF/PDF rotation."""

    index: int
    image: np.ndarray
    dpi: float | None
    # From a PDF's own text layer, in this image's pixels; None when the page needs OCR.
    text_lines: tuple[TextLine, ...] | None = None

    @property
    def height(self) -> int:
        return self.image.shape[0]

    @property
    def width(self) -> int:
        return self.image.shape[1]


@dataclass(frozen=True)
class SourceDocument:
    """An opened, checked input. ``pages()`` decodes lazily, one page at a time, and can be called again."""

    document: Document
    format: str
    page_count: int
    _data: bytes = field(repr=False, compare=False)
    _name: str = field(repr=False, compare=False)
    _settings: Settings = field(repr=False, compare=False)

    def pages(self) -> Iterator[PageImage]:
        if self.format == "pdf":
            return _pdf_pages(self._data, self._name, self.page_count, self._settings)
        return _image_pages(self._data, self.format, self._name, self.page_count, self._settings)


def open_document(
    source: str | Path | bytes, *, name: str | None = None, settings: Settings | None = None
) -> SourceDocument:
    """Read and check a file (a path, or its bytes plus the uploaded ``name``) without decoding any page.

    Raises :class:`InputError` subclasses for bad content and ``FileNotFoundError`` for a missing path.
    """
    settings = settings or get_settings()
    data, label, uri = _read(source, name, settings)
    if not data:
        raise EmptyFile(label)
    fmt = detect_format(data)
    ext = Path(label).suffix.lower()
    claimed = _EXTENSIONS.get(ext)
    if fmt is None:
        raise UnsupportedFormat(
            label,
            f"content is {describe_content(data)} but the name says {ext or '(no extension)'!r}; "
            f"supported formats: {', '.join(SUPPORTED_FORMATS)}",
        )
    if ext and claimed != fmt:
        log.warning("%s: name says %r but the content is %s; reading it as %s", label, ext, fmt, fmt)

    if fmt == "pdf":
        page_count = _inspect_pdf(data, label, settings)
    else:
        page_count = _inspect_image(data, fmt, label, settings)
    kind = DocumentKind.pdf if fmt == "pdf" else DocumentKind.image
    document = Document.from_bytes(data, kind, uri, media_type=MEDIA_TYPES[fmt])
    return SourceDocument(document, fmt, page_count, data, label, settings)


def read_pages(source: str | Path | bytes, **kw) -> list[PageImage]:
    """All pages at once; fine for images and short PDFs, use ``open_document(...).pages()`` otherwise."""
    return list(open_document(source, **kw).pages())


# --- detection -------------------------------------------------------------------------------


def detect_format(data: bytes) -> str | None:
    """The supported format the bytes are in, from magic numbers only, or None."""
    for magic, fmt in _MAGIC:
        if data.startswith(magic):
            return fmt
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data[:2] == b"BM" and int.from_bytes(data[14:18], "little") in _BMP_HEADER_SIZES:
        return "bmp"
    if b"%PDF-" in data[:1024]:  # readers (pdfium included) accept junk before the header
        return "pdf"
    return None


def describe_content(data: bytes) -> str:
    """A short human description of unsupported content, for error messages."""
    for magic, what in _OTHER_MAGIC:
        if data.startswith(magic):
            return what
    if data[4:8] == b"ftyp":
        return f"an ISO media file ({data[8:12].decode('ascii', 'replace').strip()}, e.g. HEIC/AVIF/MP4)"
    head = data[:4096]
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as e:
        text = head[: e.start].decode("utf-8") if e.start > len(head) - 4 else None
    if text is not None and all(c.isprintable() or c.isspace() for c in text):
        low = text.lstrip("\ufeff \t\r\n").lower()
        if low.startswith(("<!doctype html", "<html")) or "<html" in low[:512]:
            return "an HTML page"
        if low.startswith("<?xml"):
            return "an XML document"
        return "plain text"
    return f"unrecognised binary data (starts with {data[:8].hex(' ')})"


# --- limits and errors -----------------------------------------------------------------------


def _read(source: str | Path | bytes, name: str | None, settings: Settings) -> tuple[bytes, str, str]:
    """The bytes, a label for messages and the source URI; the size limit is checked before reading."""
    limit = settings.max_file_bytes
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        label = name or "<bytes>"
        if len(data) > limit:
            raise LimitExceeded(label, "max_file_bytes", len(data), limit, "file size (bytes)")
        return data, label, name or "<bytes>"
    path = Path(source)
    label = name or str(path)
    st = path.stat()  # FileNotFoundError for a missing path, on purpose
    if not stat.S_ISREG(st.st_mode):  # a directory, FIFO or device: reading it could block forever
        raise UnsupportedFormat(label, "not a regular file")
    size = st.st_size
    if size > limit:
        raise LimitExceeded(label, "max_file_bytes", size, limit, "file size (bytes)")
    with path.open("rb") as f:
        data = f.read(limit + 1)  # the file may have grown since stat()
    if len(data) > limit:
        raise LimitExceeded(label, "max_file_bytes", len(data), limit, "file size (bytes)")
    return data, label, str(path)


def _check_pixels(label: str, width: float, height: float, index: int, settings: Settings) -> None:
    if not (math.isfinite(width) and math.isfinite(height)) or width < 1 or height < 1:
        raise CorruptFile(label, f"page {index + 1} has an invalid size {width} x {height}")
    pixels = int(width) * int(height)
    if pixels > settings.max_page_pixels:
        what = f"page {index + 1} size in pixels ({int(width)} x {int(height)})"
        raise LimitExceeded(label, "max_page_pixels", pixels, settings.max_page_pixels, what)


@contextmanager
def _content_errors(label: str, settings: Settings, what: str):
    """Turn whatever a decoder raises on bad content into an InputError (ours pass through)."""
    try:
        yield
    except InputError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        # Pillow's own guard fires inside Image.open(), before we see the size: above
        # 2 x Image.MAX_IMAGE_PIXELS, or above 1 x when warnings are turned into errors.
        m = re.search(r"\((\d+) pixels\)", str(e))
        pixels = int(m[1]) if m else 0
        pillow_max = (Image.MAX_IMAGE_PIXELS or 0) * (2 if isinstance(e, Image.DecompressionBombError) else 1)
        what = f"image size in pixels (Pillow's decompression-bomb guard allows {pillow_max:,})"
        maximum = min(settings.max_page_pixels, pillow_max)
        raise LimitExceeded(label, "max_page_pixels", pixels, maximum, what) from e
    except UnidentifiedImageError as e:  # its message is just the BytesIO's repr
        raise CorruptFile(label, f"cannot read {what}: not a valid file of this format") from e
    except Exception as e:
        raise CorruptFile(label, f"cannot read {what}: {type(e).__name__}: {e}") from e


# --- images (Pillow) -------------------------------------------------------------------------


def _inspect_image(data: bytes, fmt: str, label: str, settings: Settings) -> int:
    """Page count and every page's size, from headers only (Image.open and seek do not decode)."""
    with _content_errors(label, settings, f"{fmt.upper()} header"):
        with Image.open(io.BytesIO(data), formats=[_PIL_FORMATS[fmt]]) as im:
            _check_pixels(label, *im.size, 0, settings)
            count = 1
            while fmt == "tiff":  # only TIFF pages count; APNG/animated WebP frames are not pages
                try:
                    im.seek(count)
                except EOFError:
                    break
                count += 1
                if count > settings.max_pages:  # stop counting: a crafted TIFF can chain millions of IFDs
                    raise LimitExceeded(label, "max_pages", count, settings.max_pages, "number of pages (at least)")
                _check_pixels(label, *im.size, count - 1, settings)
            return count


def _image_pages(data: bytes, fmt: str, label: str, count: int, settings: Settings) -> Iterator[PageImage]:
    with _content_errors(label, settings, f"{fmt.upper()} header"):
        im = Image.open(io.BytesIO(data), formats=[_PIL_FORMATS[fmt]])
    try:
        for index in range(count):
            deadline = Deadline(settings.page_timeout_s, f"{label} page {index + 1}")
            with _content_errors(label, settings, f"{fmt.upper()} page {index + 1}"):
                if index:
                    im.seek(index)
                _check_pixels(label, *im.size, index, settings)
                im.load()
                deadline.check()
                page = PageImage(index, _upright_rgb(im, label), _dpi(im.info))
            deadline.check()
            yield page
    finally:
        im.close()


def _upright_rgb(im: Image.Image, label: str) -> np.ndarray:
    try:
        im = ImageOps.exif_transpose(im)
    except Exception as e:  # noqa: BLE001 - a broken EXIF block should not lose the page
        log.warning("%s: ignoring unreadable EXIF orientation (%s)", label, e)
    if im.mode.startswith("I;16") or im.mode in ("I", "F"):
        # Pillow's convert() clips these to 0..255 (16-bit scans come out white): scale instead.
        a = np.asarray(im, dtype=np.float32)
        top = float(a.max()) if a.size else 0.0
        if top > 255:
            a = a * (255.0 / top)
        im = Image.fromarray(np.clip(a + 0.5, 0, 255).astype(np.uint8), "L")
    if im.has_transparency_data:  # RGBA, LA, PA, P or RGB with tRNS: flatten on white paper
        im = Image.alpha_composite(Image.new("RGBA", im.size, (255, 255, 255, 255)), im.convert("RGBA"))
    return np.array(im.convert("RGB"), dtype=np.uint8)


def _dpi(info: dict) -> float | None:
    try:
        dpi = float(info["dpi"][0])
    except (KeyError, TypeError, ValueError, IndexError):
        return None
    return dpi if 1.0 <= dpi <= 100_000 else None


# --- PDF (pdfium) ----------------------------------------------------------------------------


def _open_pdf(data: bytes, label: str) -> pdfium.PdfDocument:
    try:
        return pdfium.PdfDocument(data)
    except pdfium.PdfiumError as e:
        if e.err_code in (pdfium_c.FPDF_ERR_PASSWORD, pdfium_c.FPDF_ERR_SECURITY):
            raise CorruptFile(label, "the PDF is encrypted (password protected); upload an unlocked copy") from e
        raise CorruptFile(label, f"cannot open the PDF: {e}") from e


def _pdf_pixels(width_pt: float, height_pt: float, scale: float) -> tuple[float, float]:
    if not (math.isfinite(width_pt) and math.isfinite(height_pt)):
        return width_pt, height_pt
    return math.ceil(width_pt * scale), math.ceil(height_pt * scale)  # as PdfPage.render sizes its bitmap


def _inspect_pdf(data: bytes, label: str, settings: Settings) -> int:
    scale = settings.pdf_dpi / 72
    with _PDFIUM_LOCK, _content_errors(label, settings, "PDF"):
        pdf = _open_pdf(data, label)
        try:
            count = len(pdf)
            if count > settings.max_pages:
                raise LimitExceeded(label, "max_pages", count, settings.max_pages, "number of pages")
            for index in range(count):  # page sizes come from the page tree, no page is loaded
                _check_pixels(label, *_pdf_pixels(*pdf.get_page_size(index), scale), index, settings)
            return count
        finally:
            pdf.close()


def _pdf_pages(data: bytes, label: str, count: int, settings: Settings) -> Iterator[PageImage]:
    scale = settings.pdf_dpi / 72
    with _PDFIUM_LOCK, _content_errors(label, settings, "PDF"):
        pdf = _open_pdf(data, label)
        try:
            pdf.init_forms()  # so filled-in form fields are rendered; must precede loading pages
        except pdfium.PdfiumError as e:
            log.warning("%s: rendering without form fields (%s)", label, e)
    try:
        for index in range(count):
            deadline = Deadline(settings.page_timeout_s, f"{label} page {index + 1}")
            with _PDFIUM_LOCK, _content_errors(label, settings, f"PDF page {index + 1}"):
                page = pdf[index]
                try:
                    _check_pixels(label, *_pdf_pixels(*page.get_size(), scale), index, settings)
                    bitmap = page.render(scale=scale, rev_byteorder=True)  # 3-channel RGB, /Rotate applied
                    image = np.array(bitmap.to_numpy(), dtype=np.uint8)  # copy out of pdfium's buffer
                    bitmap.close()
                    deadline.check()
                    lines = _pdf_text_lines(page, image.shape[1], image.shape[0])
                finally:
                    page.close()
            deadline.check()
            yield PageImage(index, image, float(settings.pdf_dpi), lines)
    finally:
        with _PDFIUM_LOCK:
            pdf.close()


def _pdf_text_lines(page: pdfium.PdfPage, width: int, height: int) -> tuple[TextLine, ...] | None:
    """The page's visible text layer as lines in the rendered bitmap's pixels, or None if it has none.

    pdfium orders characters as drawn and inserts generated ``\\r\\n`` where a new line starts;
    a line is also split where two characters are more than a line height apart (table columns),
    so the lines look like what the OCR detector would find. Boxes use pdfium's loose char boxes
    (font ascent to descent), converted with the same page-to-device transform as the rendering,
    so page rotation and a MediaBox not at the origin are handled.
    """
    textpage = page.get_textpage()
    lines: list[TextLine] = []
    chars: list[str] = []
    box: list[float] | None = None  # union of the current segment's char boxes: l, b, r, t (PDF points)
    prev = None  # the previous visible char's box

    def flush() -> None:
        nonlocal chars, box, prev
        text = " ".join("".join(chars).split())
        if text and box is not None:
            quad = _device_quad(page, width, height, box)
            if quad is not None:
                lines.append(TextLine(box=quad, text=text, confidence=1.0))
        chars, box, prev = [], None, None

    try:
        for i in range(textpage.count_chars()):
            code = pdfium_c.FPDFText_GetUnicode(textpage, i)
            ch = chr(code) if 0 < code <= 0x10FFFF else ""
            if ch in ("\r", "\n"):  # pdfium's generated line breaks
                flush()
                continue
            if ch.isspace():
                if chars:
                    chars.append(" ")
                continue
            if not ch.isprintable():  # unmapped glyphs (private use), control chars: not text
                continue
            obj = pdfium_c.FPDFText_GetTextObject(textpage, i)
            if obj and pdfium_c.FPDFTextObj_GetTextRenderMode(obj) == pdfium_c.FPDF_TEXTRENDERMODE_INVISIBLE:
                continue  # a scanner's hidden OCR layer: trust our OCR of the image, not theirs
            try:
                cb = textpage.get_charbox(i, loose=True)
            except pdfium.PdfiumError:
                continue
            if prev is not None and _gap(prev, cb) > max(prev[2] - prev[0], prev[3] - prev[1]):
                flush()
            chars.append(ch)
            box = list(cb) if box is None else [*map(min, box[:2], cb[:2]), *map(max, box[2:], cb[2:])]
            prev = cb
        flush()
    finally:
        textpage.close()
    return tuple(lines) or None


def _gap(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """Distance between two (l, b, r, t) boxes along whichever axis separates them."""
    dx = max(0.0, b[0] - a[2], a[0] - b[2])
    dy = max(0.0, b[1] - a[3], a[1] - b[3])
    return max(dx, dy)


def _device_quad(page: pdfium.PdfPage, width: int, height: int, box: list[float]):
    """PDF-point box (origin bottom-left) to a pixel quad (origin top-left), clipped to the image."""
    xs, ys = [], []
    dx, dy = ctypes.c_int(), ctypes.c_int()
    for x, y in ((box[0], box[1]), (box[2], box[3])):
        pdfium_c.FPDF_PageToDevice(page, 0, 0, width, height, 0, x, y, dx, dy)
        xs.append(dx.value)
        ys.append(dy.value)
    left, right = max(0, min(xs)), min(width, max(xs))
    top, bottom = max(0, min(ys)), min(height, max(ys))
    if right <= left or bottom <= top:  # off the visible page (hidden text)
        return None
    return ((left, top), (right, top), (right, bottom), (left, bottom))

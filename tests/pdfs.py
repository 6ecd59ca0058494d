"""Hand-written PDFs for tests: a few lines of PDF syntax, Helvetica text objects, no font files."""

from __future__ import annotations


def make_pdf(pages: list[dict], encrypt: bool = False) -> bytes:
    """A hand-written PDF. Each page: content (bytes), size=(w, h) points, rotate, origin of the MediaBox.

    /F1 is Helvetica (a standard font: no font file needed). ``encrypt`` adds a Standard security
    handler whose password nobody knows, which is what an uploader's locked PDF looks like to us.
    """
    objs = {1: b"<< /Type /Catalog /Pages 2 0 R >>", 3: b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"}
    kids, n = [], 4
    for p in pages:
        (w, h), (x0, y0) = p.get("size", (612, 792)), p.get("origin", (0, 0))
        content = p.get("content", b"")
        objs[n] = (
            b"<< /Type /Page /Parent 2 0 R /MediaBox [%g %g %g %g] /Rotate %d "
            b"/Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>"
            % (x0, y0, x0 + w, y0 + h, p.get("rotate", 0), n + 1)
        )
        objs[n + 1] = b"<< /Length %d >>\nstream\n%s\nendstream" % (len(content), content)
        kids.append(b"%d 0 R" % n)
        n += 2
    objs[2] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (b" ".join(kids), len(kids))
    trailer = b""
    if encrypt:
        objs[n] = b"<< /Filter /Standard /V 1 /R 2 /O <%s> /U <%s> /P -44 >>" % (b"ab" * 32, b"cd" * 32)
        trailer = b" /Encrypt %d 0 R /ID [<%s> <%s>]" % (n, b"0f" * 16, b"0f" * 16)
        n += 1
    out, offsets = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n"), {}
    for k in sorted(objs):
        offsets[k] = len(out)
        out += b"%d 0 obj\n%s\nendobj\n" % (k, objs[k])
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % n + b"".join(b"%010d 00000 n \n" % offsets[k] for k in range(1, n))
    out += b"trailer\n<< /Size %d /Root 1 0 R%s >>\nstartxref\n%d\n%%%%EOF\n" % (n, trailer, xref)
    return bytes(out)


def text(x: float, y: float, size: float, s: str) -> bytes:
    return b"BT /F1 %g Tf %g %g Td (%s) Tj ET\n" % (size, x, y, s.encode("latin-1"))

"""A file's pages → its Claims: one per bill, a 费用清单 printed over several pages joined into one.

Why: a list of 20 to 60 items often runs over pages. Page 1 has the title, the patient and the first
rows; later pages continue the grid under a repeated column header; only the last page prints the totals
(合计, 大写/小写) and the payment split. Read page by page, the first pages are claims with no total and
the last a claim whose items do not add up to its total; none of their checks can pass. Joined, the
items sum to the total on the last page and every check runs on the whole bill.

A photo or scan of several receipts on one sheet gives one claim per receipt (``structure_image``).

A page continues the claim before it when all of these hold (anything else starts a new claim):
- both are pages of one document (``doc_id``) and both are itemised lists;
- the claim so far has printed no total yet (a page with its own total ends a bill);
- the grids have the same columns, by role (名称, 规格, 单位, 数量, 单价, 金额, 类别), in the same order;
- the bill is the same: where both pages print a 住院号 they agree, else where both print a name it
  agrees (a continuation page repeats them; a misread one keeps the pages apart, which the
  missing-total findings then show a reviewer).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from rapidfuzz.distance import Levenshtein

from core.records import Claim, DocumentType, Finding, Page, SealText, TextLine

from .layout import Cell, cells_of, median_height, unstack
from .repair import verify_claim
from .structure import _ITEMISED_COLS, _header_row, missing, structure_page

__all__ = ["structure_document", "structure_image"]


def structure_document(pages: Sequence[Page], *, verify: bool = True) -> list[Claim]:
    """The claims of one file's OCR'd pages, in page order: pages continuing an itemised list are
    joined into its claim; the checks (by default) run on each claim once it is whole."""
    out: list[tuple[Claim, tuple[str, ...] | None, list[int]]] = []
    for page in pages:
        found = structure_image(page, verify=False)
        if len(found) > 1:  # several receipts on one sheet: bills of their own, never joined
            out += [(claim, None, [claim.page]) for claim in found]
            continue
        claim = found[0]
        # a second layout pass, so only where a join is possible: itemised pages of a multi-page file
        joinable = len(pages) > 1 and claim.doc_type is DocumentType.itemised_list
        columns = _grid_roles(page) if joinable else None
        if out and _continues(out[-1][0], out[-1][1], claim, columns):
            prev, cols, numbers = out[-1]
            out[-1] = (_join(prev, claim), cols, [*numbers, claim.page])
        else:
            out.append((claim, columns, [claim.page]))
    claims = [_note_pages(claim, numbers) for claim, _, numbers in out]
    return [verify_claim(c) if verify and c.doc_type is not DocumentType.not_a_bill else c for c in claims]


def _grid_roles(page: Page) -> tuple[str, ...] | None:
    """The roles of the page's item grid columns, left to right (None: no grid)."""
    cells = cells_of(page.lines)
    if not cells:
        return None
    header = _header_row(unstack(cells, median_height(cells)))
    if header is None:
        return None
    roles = []
    for h in header:
        role = next((name for name, pat in _ITEMISED_COLS if re.search(pat, h.key)), h.key)
        roles.append(role)
    return tuple(roles)


def _value(claim: Claim, *keys: str) -> str | None:
    for key in keys:
        f = claim.header.get(key)
        if f is not None and f.value:
            return "".join(str(f.value).split())
    return None


def _continues(prev: Claim, columns: tuple[str, ...] | None, page: Claim, page_columns: tuple[str, ...] | None) -> bool:
    if prev.doc_id != page.doc_id or not (prev.doc_type is page.doc_type is DocumentType.itemised_list):
        return False
    if prev.total_figures is not None or prev.total_words is not None:
        return False
    if columns is None or columns != page_columns:
        return False
    for keys in (("inpatient_no",), ("patient_name", "payer")):
        a, b = _value(prev, *keys), _value(page, *keys)
        if a and b:
            return a == b
    return True


def _join(prev: Claim, page: Claim) -> Claim:
    """``page``'s items after ``prev``'s, its fields filling what ``prev`` lacks, its totals and payments
    (the last page's) kept; findings of what is missing recomputed for the joined bill."""
    items = tuple(item.model_copy(update={"line_no": n}) for n, item in enumerate((*prev.items, *page.items)))
    header = prev.header | {k: f for k, f in page.header.items() if k not in prev.header}
    payments = prev.payments | page.payments
    total_figures = page.total_figures or prev.total_figures
    total_words = page.total_words or prev.total_words
    totals = {k: f for k, f in (("total_figures", total_figures), ("total_words", total_words)) if f is not None}
    findings = missing(prev.doc_type, list(items), {"totals": totals, "payments": payments})
    return prev.model_copy(update={"header": header, "items": items, "payments": payments, "findings": tuple(findings),
                                   "total_figures": total_figures, "total_words": total_words})


def _note_pages(claim: Claim, numbers: list[int]) -> Claim:
    if len(numbers) < 2:
        return claim
    note = Finding(rule="structure.pages_joined", severity="info",
                   detail=f"one itemised list over pages {', '.join(str(n) for n in numbers)}: {len(claim.items)} items")
    return claim.model_copy(update={"findings": (*claim.findings, note)})


_TITLE = re.compile(r"(?:医疗|收费|住院|门诊).*票据|发票$|费用清单")


def _is_title(key: str) -> bool:
    """A receipt's title as printed, or one that lost or misread one character of its 收费票据 (医疗门诊收费据 on a
    photo: the receipt was read into its neighbour's region). A title after a label (票据名称:…收费票据(电子)) is
    a field's value, not a title."""
    if (m := _TITLE.search(key)) is not None:
        return ":" not in key[: m.start()]  # keys are NFKC: a full-width colon is ':' there
    return (len(key) >= 5 and ":" not in key[:-3]
            and any(Levenshtein.distance(key[-n:], "收费票据") <= 1 for n in (3, 4, 5)))


SEPARATE = 6.0  # titles further apart than this many line heights head receipts of their own
_TOTAL_LINE = re.compile(r"小写|大写|合计")


def receipt_regions(page: Page) -> list[list[int]]:
    """The page's lines (indexes) grouped by receipt, for a photo or scan of several receipts on one
    sheet: each receipt prints its title (…医疗…收费票据, …发票, 费用清单) once, large, at its top. With
    two or more titles far apart, side by side titles split the page at the middles between them (left to
    right), titles one above another at the line above each title. One group (all lines) otherwise."""
    cells = cells_of(page.lines)
    everything = [list(range(len(page.lines)))]
    if not cells:
        return everything
    height = median_height(cells)
    titles = [c for c in cells if _is_title(c.key) and c.height >= 0.9 * min(height, _local_height(c, cells))]
    heads: list = []
    for t in sorted(titles, key=lambda c: (c.cy, c.cx)):
        if all(math.hypot(t.cx - h.cx, t.cy - h.cy) > SEPARATE * height for h in heads):
            heads.append(t)
    # a receipt whose title the photo lost (cut off, glare) still opens with its 票据代码 line: one with no
    # title found a few lines above it (at any x: the title is centred, 票据代码 printed at the left) and
    # far from every head heads a receipt of its own. Each receipt prints one, in its header: the 票据代码
    # nearest below a title, with no total printed between them (a total closes a receipt), is that title's,
    # however far down its layout puts it.
    codes = sorted((c for c in cells if c.key.startswith("票据代码")), key=lambda c: (c.cy, c.cx))
    totals = [c.cy for c in cells if _TOTAL_LINE.search(c.key)]
    owned = set()
    for h in heads:
        below = [k for k, c in enumerate(codes) if c.cy > h.cy - height and k not in owned
                 and not any(h.cy < y < c.cy for y in totals)]
        if below:
            owned.add(min(below, key=lambda k: math.hypot(codes[k].cx - h.cx, codes[k].cy - h.cy)))
    for t in (c for k, c in enumerate(codes) if k not in owned):
        if (heads and all(math.hypot(t.cx - h.cx, t.cy - h.cy) > SEPARATE * height for h in heads)
                and not any(-SEPARATE * height < h.cy - t.cy < height for h in heads)):
            heads.append(t)
    if len(heads) < 2:
        return everything
    spread_x = max(h.cx for h in heads) - min(h.cx for h in heads)
    spread_y = max(h.cy for h in heads) - min(h.cy for h in heads)
    if spread_x > spread_y:
        heads.sort(key=lambda h: h.cx)
        cuts = [(a.cx + b.cx) / 2 for a, b in zip(heads, heads[1:])]
        where = [sum(c.cx > x for x in cuts) for c in cells]
    else:
        heads.sort(key=lambda h: h.cy)
        cuts = [h.y0 - height for h in heads[1:]]
        # a receipt above the first title found (its own title lost to glare or a fold) ends in its totals:
        # a totals line above the first title closes a receipt of its own there
        if any(y < heads[0].y0 - height for y in totals):
            cuts.insert(0, heads[0].y0 - height)
        where = [sum(c.cy > y for y in cuts) for c in cells]
    groups = [[c.index for c, w in zip(cells, where) if w == k] for k in range(len(cuts) + 1)]
    return [g for g in groups if g]


def _local_height(title: Cell, cells: list[Cell]) -> float:
    """The typical text height around ``title`` (the median of the lines within ``SEPARATE`` of its heights):
    a receipt photographed smaller than the others on its sheet prints its title large for itself, not for
    the page."""
    reach = SEPARATE * title.height
    near = [c for c in cells if c is not title and math.hypot(c.cx - title.cx, c.cy - title.cy) <= reach]
    return median_height(near) if near else title.height


def seals_within(seals: tuple[SealText, ...], lines: tuple[TextLine, ...]) -> tuple[SealText, ...]:
    """The seals whose centre lies among a receipt's lines (one receipt's seal never names another's hospital)."""
    xs = [p[0] for line in lines for p in line.box]
    ys = [p[1] for line in lines for p in line.box]

    def inside(seal: SealText) -> bool:
        cx, cy = sum(p[0] for p in seal.box) / 4, sum(p[1] for p in seal.box) / 4
        return min(xs) <= cx <= max(xs) and min(ys) <= cy <= max(ys)

    return tuple(s for s in seals if lines and inside(s))


def structure_image(page: Page, *, verify: bool = True) -> list[Claim]:
    """The claims of one OCR'd image: one per receipt on it (``receipt_regions``). A region that gives
    no bill (no items, no total) is left out when another region gives one; with none, the whole page is
    structured as one."""
    regions = receipt_regions(page)
    if len(regions) < 2:
        return [structure_page(page, verify=verify)]
    claims = []
    for k, region in enumerate(regions):
        lines = tuple(page.lines[i] for i in region)
        part = page.model_copy(update={"lines": lines, "seals": seals_within(page.seals, lines)})
        claim = structure_page(part, verify=verify)
        if claim.items or claim.total_figures is not None:
            note = Finding(rule="structure.receipt_on_sheet", severity="info",
                           detail=f"receipt {k + 1} of {len(regions)} found on one image")
            claims.append(claim.model_copy(update={"findings": (*claim.findings, note)}))
    return claims or [structure_page(page, verify=verify)]

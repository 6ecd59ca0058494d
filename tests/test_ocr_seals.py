"""Red seals: found on rendered pages, their ring read by the real recogniser, and what the claim makes of it."""

from __future__ import annotations

import random

import numpy as np
import pytest
from PIL import Image, ImageDraw

from core.records import BillField, FieldKind, Page, SealText
from ocr.seals import find_seals, unroll
from ocr.synth.fonts import all_faces
from ocr.synth.layout import Stamp
from ocr.synth.stamp import draw_stamp

NAMES = ("贵州省人民医院", "吉林大学第一医院", "遵义医科大学附属医院", "河南省直第三人民医院")


def _form(seed: int, name: str, *, crossed: bool, fade: float = 1.0, paper: tuple[int, int, int] = (255, 255, 255)
          ) -> tuple[np.ndarray, tuple[int, int]]:
    """A page with a red ruled grid and red titles (the form's own print, which is no seal), black print,
    and the hospital's round seal; ``crossed``: the printed name after 收款单位 runs under the seal; ``fade``: the
    share of its ink the seal left (a faded or thinly inked stamp prints pale pink)."""
    r = random.Random(seed)
    faces = [f for f in all_faces() if f.covers("收款单位章医院" + name + "收费专用章")]
    img = Image.new("RGB", (1400, 1050), paper)
    d = ImageDraw.Draw(img)
    red = (200, 60, 50)
    d.rectangle((60, 200, 1340, 760), outline=red, width=3)
    for y in (260, 620):
        d.line((60, y, 1340, y), fill=red, width=2)
    title = faces[0].font(44)
    d.text((420, 60), "医疗住院收费票据（电子）", font=title, fill=red)
    body = faces[0].font(28)
    for k, label in enumerate(("项目名称", "金额（元）", "备注", "项目名称", "金额（元）")):
        d.text((100 + 250 * k, 215), label, font=body, fill=red)
    d.text((100, 300), "床位费        2,298.10", font=body, fill=(20, 20, 20))
    d.text((80, 790), "收款单位（章）：", font=body, fill=red)
    d.text((300, 790), name if crossed else "", font=body, fill=(20, 20, 20))
    page = np.asarray(img).copy()
    centre = (300 + r.randint(40, 120), 790 + r.randint(-10, 20))
    stamp = np.full_like(page, 255)
    draw_stamp(stamp, Stamp("round", *centre, name, "收费专用章"), faces, 1.0, r, np.random.default_rng(seed))
    faded = 255.0 - (255.0 - stamp) * fade  # inks multiply on paper
    return (page * (faded / 255.0)).round().astype(np.uint8), centre


@pytest.mark.parametrize("crossed", [False, True])
def test_a_hospital_seal_is_found_and_its_ring_read(ocr_engine, crossed):
    """On 4 rendered forms with a red grid and red titles, the one seal is found where it was stamped, and
    one of its two readings names the hospital whole (the black name under it need not spoil it)."""
    read = 0
    for seed, name in enumerate(NAMES):
        image, (cx, cy) = _form(seed, name, crossed=crossed)
        seals = find_seals(image)
        assert len(seals) == 1, f"{name}: {seals}"
        assert abs(seals[0].cx - cx) < 15 and abs(seals[0].cy - cy) < 15, (seals[0], (cx, cy))
        page = ocr_engine.read_image(image)
        assert len(page.seals) == 1 and len(page.seals[0].readings) == 2
        read += any(name in text for text, _ in page.seals[0].readings)
    assert read >= 3, f"the ring read whole on {read} of {len(NAMES)} forms"


def test_a_page_without_a_seal_has_none(ocr_engine):
    """A red form without a stamp: its grid, titles and a red circle's worth of text are no seal."""
    image, _ = _form(0, NAMES[0], crossed=True)
    plain = np.asarray(Image.new("RGB", image.shape[1::-1], "white")).copy()
    plain[:700] = image[:700]  # the grid, the titles and the print; the seal sits lower
    assert find_seals(plain) == []
    assert ocr_engine.read_image(plain).seals == ()


def test_a_faded_seal_is_found_in_a_second_search_and_tinted_paper_is_none():
    """A stamp that left 60 % of its ink prints pale pink (most of it under ``SATURATED``): it is found all the same, by
    the second search, where it was stamped; a pink-tinted form without a stamp has none."""
    from ocr.seals import FAINT

    for seed, name in enumerate(NAMES[:2]):
        image, (cx, cy) = _form(seed, name, crossed=False, fade=0.6)
        (seal,) = find_seals(image)  # found by the second search: not one of saturated ink
        assert seal.saturation == FAINT and abs(seal.cx - cx) < 15 and abs(seal.cy - cy) < 15, seal
    tinted, _ = _form(0, NAMES[0], crossed=True, paper=(250, 226, 226))
    plain = tinted.copy()
    plain[700:] = (250, 226, 226)  # the tinted form, its grid, titles and print; the seal sits lower
    assert find_seals(plain) == []


def test_the_strips_read_clockwise_from_the_rings_gap():
    """The unrolled strip starts where the ring's text starts: its first ink column is near its left end,
    and the strip is about as long as the ring's text and a third of it again (not the whole circumference
    and a third)."""
    image, _ = _form(7, NAMES[1], crossed=False)
    (seal,) = find_seals(image)
    scanned, only_red = unroll(image, seal)
    assert scanned.shape == only_red.shape and scanned.shape[2] == 3
    circumference = 2 * np.pi * (seal.a + seal.b) / 2 * 0.715
    assert 0.4 * circumference < scanned.shape[1] * 3 / 4 < 0.95 * circumference
    ink = (only_red[..., 0] < 128).mean(axis=0)
    assert ink[: scanned.shape[0]].max() > 0  # text begins within a strip's height of the left end


def _page(printed: str | None, *readings: tuple[str, float]) -> tuple[Page, BillField | None]:
    seals = (SealText(box=((0, 0), (10, 0), (10, 10), (0, 10)), readings=readings),) if readings else ()
    field = None if printed is None else BillField(name="hospital", value=printed, kind=FieldKind.text, raw=printed,
                                                    confidence=0.95)
    return Page(doc_id="d", index=0, width=100, height=100, seals=seals), field


@pytest.mark.parametrize(("printed", "readings", "want"), [
    # the print lost characters under the seal: the seal fills them in
    ("贵州民院", [("贵州省人民医院", 0.98), ("贵州省人代民医院勒）草", 0.66)], "贵州省人民医院"),
    # the print's misread characters stand; only what it lost comes from the seal; the seal's ornaments are cut
    ("遵义医大附医院", [("与遵夏医科大学附属医院务）家", 0.72), ("与遵夏医科大学附属医院）家", 0.73)], "遵义医科大学附属医院"),
    # a character misread under the seal where the seal was read more surely than the print (0.95)
    ("遵义医到大附属医院", [("医科大学附属医", 0.99), ("医科大学附属医院)", 0.99)], "遵义医科大学附属医院"),
    # the print's ends stand: what a reading has before its first shared character may be the seal's own words
    ("人民医院", [("南直第三人民医院南", 0.92), ("华百南省直第三人民医院百南", 0.83)], "人民医院"),
    # characters printed after the seal's reading ends stay (and are no index into the seal's reading)
    ("贵州民院门诊", [("贵州省人民医院", 0.98)], "贵州省人民医院门诊"),
    # no name printed at all: the seal's, without its own words (住院处, 收费专用章)
    (None, [("吉林大学第一医院住院处", 0.94), ("吉林大学第一医院住院健", 0.93)], "吉林大学第一医院"),
    # a printed name the seal only misreads is left alone
    ("河南省直第三人民医院", [("景省直第三人民医院", 0.86), ("省直第三人民医院", 0.83)], "河南省直第三人民医院"),
    # an institution's kind is no name (综合医院), and the financial bureau's seal names no hospital
    (None, [("票据监制章", 0.7), ("三级综合医院", 0.8)], None),
])
def test_the_seal_fills_in_the_hospitals_name(printed, readings, want):
    from claims.structure import seal_names, with_seal_name

    page, field = _page(printed, *readings)
    got = with_seal_name(field, seal_names(page))
    assert (got.value if got is not None else None) == want
    if got is not None and got.value != printed:
        assert got.needs_review and "seal" in got.note  # two readings joined are reviewed, and say so
    if got is not None and got.value == printed:
        assert got is field  # untouched


def test_the_seal_settles_a_character_the_recogniser_nearly_read_in_the_print():
    """郑卅大学第一附属医院 under the seal with 州 the runner-up for 卅: the seal's 州 is taken, though its reading
    (0.83) is less sure than the print's (0.95); without the runner-up the print's 卅 stands (州 makes no word of
    hospitals' names that 卅 does not), flagged for review: print and seal disagree."""
    from claims.structure import seal_names, with_seal_name

    page, field = _page("郑卅大学第一附属医院", ("郑州大学第一附属医院", 0.83))
    assert with_seal_name(field, seal_names(page), {1: {"州"}}).value == "郑州大学第一附属医院"
    for runner_ups in ({1: {"川"}}, None):
        got = with_seal_name(field, seal_names(page), runner_ups)
        assert got.value == "郑卅大学第一附属医院" and got.needs_review and "seal reads otherwise" in got.note
    assert not field.needs_review  # the print's own field is not changed in place


def test_the_seal_settles_a_character_that_makes_a_word_of_hospitals_names():
    """遵义医到大子附属医院 beside the seal's 医科大学附属医院 (read less surely, no runner-up): 医科 and 大学 are
    words of hospitals' names, 医到 and 大子 are not, so the seal's characters are taken, and the field reviewed."""
    from claims.structure import seal_names, with_seal_name

    page, field = _page("遵义医到大子附属医院", ("医科大学附属医院《多)医", 0.83))
    got = with_seal_name(field, seal_names(page))
    assert got.value == "遵义医科大学附属医院" and got.needs_review


def test_a_seal_naming_another_institution_leaves_the_print():
    from claims.structure import seal_names, with_seal_name

    page, field = _page("郑州大学第一附属医院", ("威海市立医院", 0.9), ("威海市立医院", 0.9))
    assert with_seal_name(field, seal_names(page)) is field


def test_each_receipt_on_a_sheet_keeps_only_its_own_seal():
    """Two receipts photographed side by side: the seal in the right one's lines is the right one's alone."""
    from claims.document import seals_within
    from core.records import TextLine

    def line(x: float, y: float) -> TextLine:
        return TextLine(box=((x, y), (x + 200, y), (x + 200, y + 30), (x, y + 30)), text="床位费", confidence=0.9)

    left, right = (line(50, 100), line(50, 700)), (line(900, 100), line(900, 700))
    seal = SealText(box=((1000, 500), (1200, 500), (1200, 700), (1000, 700)), readings=(("吉林大学第一医院", 0.9),))
    assert seals_within((seal,), left) == ()
    assert seals_within((seal,), right) == (seal,)


def test_a_seal_reading_with_its_own_words_around_the_name_still_fills_the_print():
    """A reading that starts in the seal's bottom words (出与瑶…) shares the print's characters all the same."""
    from claims.structure import seal_names, with_seal_name

    page, field = _page("贵州民院", ("出与瑶贵州省人民医院尊里手", 0.64), ("出气瑶贵州省人民医院尊出与", 0.66))
    got = with_seal_name(field, seal_names(page))
    assert got.value == "贵州省人民医院" and got.raw == "贵州民院" and got.needs_review


def test_a_structured_receipt_takes_its_hospital_from_the_print_and_the_seal():
    """structure_page end to end on a hand-made receipt: the printed name after 收款单位 (科 the runner-up for its
    到) and the seal's ring give 遵义医科大学附属医院, flagged with both readings in its note; without the seal the
    print stands, unflagged."""
    from claims.structure import structure_page
    from tests.test_claims_real_mechanisms import line

    lines = (line(300, 20, "贵州省医疗门诊收费票据（电子）"), line(40, 100, "项目名称"), line(300, 100, "金额（元）"),
             line(40, 140, "挂号费"), line(300, 140, "2.00"), line(40, 200, "金额合计（大写）贰元整"),
             line(400, 200, "（小写）2.00"), line(40, 300, "收款单位（章）：遵义医到大附属医院", alternatives=((11, "科", 0.113),)))
    seal = SealText(box=((200, 250), (400, 250), (400, 450), (200, 450)), readings=(("医科大学附属医院《多)医", 0.83),))
    page = Page(doc_id="d", index=0, width=800, height=500, lines=lines, seals=(seal,))
    hospital = structure_page(page).header["hospital"]
    assert hospital.value == "遵义医科大学附属医院" and hospital.needs_review
    assert "red seal" in hospital.note and hospital.raw == "遵义医到大附属医院"
    alone = structure_page(page.model_copy(update={"seals": ()})).header["hospital"]
    assert alone.value == "遵义医到大附属医院" and not alone.needs_review

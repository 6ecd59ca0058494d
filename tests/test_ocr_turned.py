"""A line the direction classifier turns on its own is read both ways up, and the surer reading is kept (issue 17,
twelfth round: on real upright scans the classifier was sure of wrong turns, and 92 turned read 26, 172.25 read
1225). Real models on rendered lines and a rendered page."""

from __future__ import annotations

import numpy as np

from ocr.evaluate import normalise
from ocr.pipeline import settle_turned
from ocr.synth import render_line

# amounts and fee names as bills print them; a turned 92 reads 26, a turned 6 reads 9
TEXTS = ("诊察费 92", "手术费 172.25", "西药费 6603.56", "床位费 166", "合计 1303.6", "检查费 2232.8")


def _turn(img: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.rot90(img, 2))


class _Counting:
    """The real recogniser, counting the crops it is given."""

    def __init__(self, recognizer):
        self.recognizer, self.crops = recognizer, 0

    def __call__(self, crops):
        self.crops += len(crops)
        return self.recognizer(crops)


def test_a_line_turned_wrongly_is_read_the_right_way_up(ocr_engine):
    for seed, text in enumerate(TEXTS):
        wrongly = _turn(render_line(seed, text, degrade=False)[0])  # what the recogniser got after a wrong turn
        first = ocr_engine.recognizer([wrongly])
        assert normalise(first[0].text) != normalise(text), "the turned line reads as printed: no case to settle"
        settled = settle_turned(ocr_engine.recognizer, [wrongly], [True], first)
        assert normalise(settled[0].text) == normalise(text), (text, first[0].text, settled[0].text)


def test_a_line_truly_upside_down_keeps_its_turn(ocr_engine):
    for seed, text in enumerate(TEXTS, start=20):
        righted = render_line(seed, text, degrade=False)[0]  # turned by the classifier, rightly
        first = ocr_engine.recognizer([righted])
        settled = settle_turned(ocr_engine.recognizer, [righted], [True], first)
        assert settled[0] is first[0] and normalise(settled[0].text) == normalise(text)


def test_only_turned_lines_are_read_again(ocr_engine):
    crops = [render_line(seed, text, degrade=False)[0] for seed, text in enumerate(TEXTS, start=40)]
    first = ocr_engine.recognizer(crops)
    counting = _Counting(ocr_engine.recognizer)
    assert settle_turned(counting, crops, [False] * len(crops), first) == first
    assert counting.crops == 0
    settle_turned(counting, crops, [i % 2 == 0 for i in range(len(crops))], first)
    assert counting.crops == (len(crops) + 1) // 2


def test_an_upside_down_line_on_an_upright_page_is_read(ocr_engine):
    """End to end: the page stands upright, one of its lines was printed upside down; it reads as printed."""
    lines = [render_line(seed, text, degrade=False)[0] for seed, text in enumerate(TEXTS, start=60)]
    lines[2] = _turn(lines[2])
    width = max(line.shape[1] for line in lines) + 80
    page = np.full((sum(line.shape[0] + 30 for line in lines) + 60, width, 3), 255, np.uint8)
    y = 40
    for line in lines:
        page[y:y + line.shape[0], 40:40 + line.shape[1]] = line
        y += line.shape[0] + 30
    read = ocr_engine.read_image(page)
    assert read.rotation == 0
    got = {normalise(line.text) for line in read.lines}
    assert {normalise(t) for t in TEXTS} <= got, got

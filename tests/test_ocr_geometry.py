"""Geometry, reading order, CTC decoding and DB post-processing: the pure parts of the OCR engine."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ocr.detect import SHAPE_BUCKET, DetParams, boxes_from_prob, det_input
from ocr.geometry import crop_quad, order_clockwise, quad_size, rotate_image, rotate_points
from ocr.order import reading_order
from ocr.recognize import MAX_WIDTH, WIDTH_BUCKET, ctc_decode, pad_batch, rec_batch_input


def rect(x0, y0, x1, y1):
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float32)


@given(st.permutations(range(4)))
def test_order_clockwise_any_input_order(perm):
    q = rect(10, 20, 110, 50)
    assert np.allclose(order_clockwise(q[list(perm)]), q)


@pytest.mark.parametrize("degrees", [0, 90, 180, 270])
def test_rotate_points_matches_rotate_image(degrees):
    img = np.zeros((40, 60, 3), np.uint8)
    img[5, 7] = 255  # the pixel whose top-left corner is (7, 5)
    turned = rotate_image(img, degrees)
    (x, y), = rotate_points(np.array([[7.5, 5.5]]), degrees, 60, 40)  # pixel centre
    assert turned[int(y), int(x)].max() == 255


def test_rotations_compose_to_identity():
    pts = np.array([[3.0, 4.0], [50.0, 7.0]])
    once = rotate_points(pts, 90, 60, 40)
    back = rotate_points(once, 270, 40, 60)
    assert np.allclose(back, pts)


def test_crop_quad_straightens_and_turns_vertical_text():
    img = np.full((100, 200, 3), 255, np.uint8)
    assert crop_quad(img, rect(10, 10, 110, 40)).shape[:2] == (30, 100)
    assert crop_quad(img, rect(10, 10, 40, 90)).shape[:2] == (30, 80)  # tall box read top-down
    w, h = quad_size(rect(0, 0, 100, 30))
    assert (w, h) == (100, 30)


def test_reading_order_rows_then_columns_with_skew():
    # two rows of three cells on a page tilted by 2 degrees
    theta = np.deg2rad(2)
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    quads, expected = [], []
    for r in range(2):
        for c in range(3):
            q = rect(50 + c * 400, 100 + r * 60, 350 + c * 400, 130 + r * 60) @ rot.T
            quads.append(q.astype(np.float32))
            expected.append(r * 3 + c)
    shuffled = [5, 0, 3, 1, 4, 2]
    order = reading_order([quads[i] for i in shuffled])
    assert [shuffled[i] for i in order] == expected


def test_ctc_decode_merges_repeats_and_drops_blanks():
    charset = ["<blank>", "a", "b", " "]
    steps = [1, 1, 0, 1, 2, 2, 0, 0]  # a a _ a b b _ _ → "aab"
    probs = np.full((1, len(steps), 4), 0.01, np.float32)
    probs[0, range(len(steps)), steps] = 0.97
    (rec,) = ctc_decode(probs, charset)
    assert rec.text == "aab"
    assert rec.confidence == pytest.approx(0.97)
    (empty,) = ctc_decode(np.eye(4, dtype=np.float32)[[0, 0, 0]][None], charset)
    assert empty.text == "" and empty.confidence == 0.0


def test_ctc_decode_keeps_the_runner_up_of_an_uncertain_character():
    charset = ["<blank>", "a", "b", "c"]
    probs = np.full((1, 5, 4), 0.01, np.float32)
    probs[0, 0, 1] = 0.97  # a, sure
    probs[0, 1, 0] = 0.97  # blank
    probs[0, 2, [2, 3, 0]] = (0.55, 0.2, 0.24)  # b, nearly c (the blank's share is no character)
    probs[0, 3, [2, 3]] = (0.6, 0.35)  # the same b's second step: c's best share there counts
    probs[0, 4, 0] = 0.97
    (rec,) = ctc_decode(probs, charset)
    assert rec.text == "ab" and rec.alternatives == ((1, "c", 0.35),)


def test_rec_batch_pads_to_widest_crop():
    crops = [np.zeros((30, 60, 3), np.uint8), np.zeros((30, 600, 3), np.uint8)]
    x = rec_batch_input(crops)
    assert x.shape == (2, 3, 48, 960)  # 600 px at height 48 → 960, a multiple of the width bucket
    assert x[0, :, :, 100:].max() == 0  # padding beyond the narrow crop


def test_det_input_is_bounded_and_padded_to_a_shape_bucket():
    x, (sx, sy), (h, w) = det_input(np.full((3000, 1000, 3), 255, np.uint8), 1280)
    assert x.shape[:2] == (1, 3) and h % 32 == 0 and w % 32 == 0 and max(h, w) <= 1280
    assert x.shape[2] % SHAPE_BUCKET == 0 and x.shape[3] % SHAPE_BUCKET == 0
    assert x.shape[2] >= h and x.shape[3] >= w and not x[:, :, :, w:].any()  # padding is zero
    assert sx == pytest.approx(1000 / w) and sy == pytest.approx(3000 / h)


def test_shapes_fall_into_few_buckets():
    widths = {rec_batch_input([np.zeros((32, w, 3), np.uint8)]).shape[3] for w in range(20, 4000, 7)}
    assert len(widths) <= MAX_WIDTH // WIDTH_BUCKET and max(widths) == MAX_WIDTH
    assert [len(pad_batch(np.zeros((n, 2)))) for n in range(1, 9)] == [1, 2, 4, 4, 8, 8, 8, 8]


def test_db_postprocess_finds_the_text_blob_in_page_pixels():
    prob = np.zeros((320, 320), np.float32)
    prob[100:120, 40:240] = 0.95  # one shrunk text region in network pixels
    dets = boxes_from_prob(prob, (2.0, 2.0), (640, 640), DetParams())
    assert len(dets) == 1
    x0, y0 = dets[0].quad.min(0)
    x1, y1 = dets[0].quad.max(0)
    # grown back by DB's unclip distance (area * ratio / perimeter ≈ 14 px here), then scaled by 2
    d = 199 * 19 * 1.6 / (2 * (199 + 19))
    assert (x0, y0, x1, y1) == pytest.approx(((40 - d) * 2, (100 - d) * 2, (239 + d) * 2, (119 + d) * 2), abs=4)
    assert boxes_from_prob(np.zeros((64, 64), np.float32), (1, 1), (64, 64), DetParams()) == []

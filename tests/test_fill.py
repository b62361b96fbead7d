"""preprocessors.fill_strokes: flats between the lines, from a drawing or its edges."""
import cv2
import numpy as np
import pytest

from preprocessors import HintError, fill_strokes
from preprocessors.fill import DEFAULT_FILL_ALPHA, fill_and_areas

RED, BLUE, GREEN = (1.0, 0.0, 0.0), (0.0, 0.0, 1.0), (0.0, 1.0, 0.0)


def two_boxes(gap_in_left: int = 0) -> np.ndarray:
    """A 200x300 drawing: two closed boxes (2-px black lines) on white; optionally a gap in the left box's left side."""
    drawing = np.full((200, 300, 3), 255, np.uint8)
    cv2.rectangle(drawing, (20, 20), (140, 180), (0, 0, 0), 2)
    cv2.rectangle(drawing, (160, 20), (280, 180), (0, 0, 0), 2)
    if gap_in_left:
        drawing[90 : 90 + gap_in_left, 18:23] = 255
    return drawing


def paint(layer: np.ndarray, rows: slice, cols: slice, colour, alpha: float = 1.0) -> None:
    layer[rows, cols, :3] = np.float32(colour) * alpha
    layer[rows, cols, 3] = alpha


def empty_layer(shape=(200, 300)) -> np.ndarray:
    return np.zeros((*shape, 4), np.float32)


def straight(layer: np.ndarray, row: int, col: int) -> np.ndarray:
    return layer[row, col, :3] / layer[row, col, 3]


def test_a_stroke_fills_its_box_and_nothing_else():
    strokes = empty_layer()
    paint(strokes, slice(50, 60), slice(50, 90), RED)
    filled = fill_strokes(two_boxes(), strokes)
    assert filled.dtype == np.float32 and filled.shape == strokes.shape
    np.testing.assert_array_equal(filled[50:60, 50:90], strokes[50:60, 50:90])  # painted pixels keep their paint
    inside = filled[25:175, 25:135, 3]
    assert (inside > 0).all() and np.isclose(filled[150, 120, 3], DEFAULT_FILL_ALPHA)
    np.testing.assert_allclose(straight(filled, 150, 120), RED)
    assert filled[5, 5, 3] == 0 and filled[100, 200, 3] == 0 and filled[100, 150, 3] == 0  # outside, right box, between
    assert filled[20, 80, 3] == 0  # the line itself stays empty


def test_the_default_gap_holds_a_broken_line_and_gap_zero_leaks():
    strokes = empty_layer()
    paint(strokes, slice(50, 60), slice(50, 90), RED)
    drawing = two_boxes(gap_in_left=5)
    assert fill_strokes(drawing, strokes)[100, 5, 3] == 0  # beside the gap, outside the box
    assert fill_strokes(drawing, strokes, gap=0)[100, 5, 3] > 0  # a plain flood fill runs out through it
    assert fill_strokes(drawing, strokes, gap=6)[150, 120, 3] > 0


def test_fill_and_areas_numbers_the_areas_the_fill_fills():
    strokes = empty_layer()
    assert not fill_and_areas(two_boxes(), strokes)[1].any()  # nothing painted: no area
    paint(strokes, slice(50, 60), slice(200, 240), BLUE)  # the right box
    paint(strokes, slice(50, 60), slice(50, 90), RED)  # the left box
    paint(strokes, slice(100, 110), slice(16, 40), GREEN)  # over the left box's line by a few pixels: not outside
    filled, areas = fill_and_areas(two_boxes(), strokes)
    np.testing.assert_array_equal(filled, fill_strokes(two_boxes(), strokes))
    unfilled, same_areas = fill_and_areas(two_boxes(), strokes, fill=False)
    np.testing.assert_array_equal(unfilled, strokes)
    np.testing.assert_array_equal(same_areas, areas)
    assert areas.dtype == np.int32 and areas.shape == (200, 300)
    unpainted = strokes[..., 3] == 0
    np.testing.assert_array_equal((areas > 0)[unpainted], (fill_strokes(two_boxes(), strokes)[..., 3] > 0)[unpainted])
    assert set(np.unique(areas)) == {0, 1, 2} and areas[100, 80] != areas[100, 220]  # one number per box
    assert areas[5, 5] == 0 and areas[20, 80] == 0  # outside (only grazed) and the line


def test_two_colours_in_one_area_split_it_without_mixing():
    strokes = empty_layer()
    paint(strokes, slice(95, 105), slice(30, 40), RED)
    paint(strokes, slice(95, 105), slice(120, 130), BLUE)
    filled = fill_strokes(two_boxes(), strokes)
    np.testing.assert_allclose(straight(filled, 100, 50), RED)
    np.testing.assert_allclose(straight(filled, 100, 110), BLUE)
    box = filled[25:175, 25:135]
    colours = box[..., :3] / box[..., 3:]
    is_red, is_blue = np.all(np.isclose(colours, RED), axis=2), np.all(np.isclose(colours, BLUE), axis=2)
    assert (is_red | is_blue).all()  # never a mix
    assert 0.3 < is_red.mean() < 0.7


def test_a_stroke_crossing_a_line_by_a_few_pixels_does_not_flood_the_neighbour():
    strokes = empty_layer()
    paint(strokes, slice(95, 105), slice(100, 144), GREEN)  # the left box's right line is x 139-141
    filled = fill_strokes(two_boxes(), strokes)
    assert filled[150, 120, 3] > 0 and filled[100, 152, 3] == 0 and filled[5, 5, 3] == 0
    paint(strokes, slice(95, 105), slice(100, 152), GREEN)  # 10 pixels past the line: meant
    assert fill_strokes(two_boxes(), strokes)[5, 5, 3] > 0


def test_an_area_narrower_than_the_gap_is_claimed_by_coverage_only():
    drawing = np.full((100, 100, 3), 255, np.uint8)
    drawing[:, 40] = drawing[:, 44] = 0  # a strip 3 pixels wide between two lines
    strokes = empty_layer((100, 100))
    paint(strokes, slice(10, 90), slice(38, 47), RED)  # covers most of the strip, and crosses both lines by 2 px
    filled = fill_strokes(drawing, strokes)
    assert filled[95, 42, 3] > 0  # the strip's unpainted end is filled
    assert filled[95, 20, 3] == 0 and filled[95, 70, 3] == 0  # the sides are not
    sloppy = empty_layer((100, 100))
    paint(sloppy, slice(10, 20), slice(20, 43), RED)  # paints the left side, touches a little of the strip
    filled = fill_strokes(drawing, sloppy)
    assert filled[95, 20, 3] > 0 and filled[95, 42, 3] == 0


def test_edges_give_the_same_areas_as_the_drawing():
    drawing = two_boxes()
    edges = (drawing.mean(axis=2) < 128).astype(np.float32)
    strokes = empty_layer()
    paint(strokes, slice(50, 60), slice(50, 90), RED)
    np.testing.assert_array_equal(fill_strokes(edges, strokes), fill_strokes(drawing, strokes))


def test_an_antialiased_rim_does_not_split_the_area():
    strokes = empty_layer()
    paint(strokes, slice(50, 60), slice(50, 90), RED)
    strokes[49, 50:90] = (0.5, 0.1, 0.0, 0.8)  # a darker, other-hued rim above alpha 0.5
    filled = fill_strokes(two_boxes(), strokes)
    np.testing.assert_allclose(straight(filled, 150, 120), RED)
    np.testing.assert_allclose(straight(filled, 30, 70), RED)


def test_soft_paint_is_composited_over_the_flats_and_the_layer_stays_premultiplied():
    strokes = empty_layer()
    paint(strokes, slice(50, 60), slice(50, 90), RED)
    paint(strokes, slice(70, 72), slice(50, 90), BLUE, alpha=0.3)  # soft paint: coloured, claims nothing
    filled = fill_strokes(two_boxes(), strokes)
    expected = strokes[71, 60] + np.float32((*RED, 1.0)) * DEFAULT_FILL_ALPHA * (1 - 0.3)
    np.testing.assert_allclose(filled[71, 60], expected, rtol=1e-6)
    assert filled.min() >= 0 and filled.max() <= 1
    assert (filled[..., :3] <= filled[..., 3:] + 1e-6).all()


def test_nothing_painted_or_all_lines_gives_the_strokes_back():
    strokes = empty_layer()
    np.testing.assert_array_equal(fill_strokes(two_boxes(), strokes), strokes)
    paint(strokes, slice(50, 60), slice(50, 90), RED)
    all_lines = np.zeros((200, 300, 3), np.uint8)
    np.testing.assert_array_equal(fill_strokes(all_lines, strokes), strokes)


@pytest.mark.parametrize("lines, strokes, options, message", [
    (np.zeros((20, 30)), np.zeros((20, 30, 3), np.float32), {}, "HxWx4"),
    (np.zeros((20, 30)), np.zeros((20, 30, 4), np.uint8), {}, "float premultiplied"),
    (np.zeros((20, 31)), np.zeros((20, 30, 4), np.float32), {}, "resize one to the other"),
    (np.zeros((20, 30)), np.zeros((20, 30, 4), np.float32), {"gap": -1}, "gap"),
    (np.zeros((20, 30)), np.zeros((20, 30, 4), np.float32), {"gap": 2.5}, "gap"),
    (np.zeros((20, 30)), np.zeros((20, 30, 4), np.float32), {"fill_alpha": 1.0}, "fill_alpha"),
    (np.zeros((20, 30, 5)), np.zeros((20, 30, 4), np.float32), {}, "lines"),
    (np.zeros((20, 30)), np.full((20, 30, 4), np.nan, np.float32), {}, "NaN"),
])
def test_bad_input_is_refused_with_what_to_do(lines, strokes, options, message):
    with pytest.raises(HintError, match=message):
        fill_strokes(lines, strokes, **options)


def test_training_fills_the_procedural_strokes_between_the_images_own_edges_with_its_probability():
    from preprocessors import StrokeParams, training_hint

    image = 255 - two_boxes()  # white boxes on black: Canny finds their sides
    params = StrokeParams(count_min=4, count_max=4, empty_prob=0.0)
    sparse = training_hint(image, np.random.default_rng(5), params)
    filled = training_hint(image, np.random.default_rng(5), params, fill_probability=1.0)
    np.testing.assert_array_equal(sparse[0], filled[0])  # the same edges
    painted = sparse[4] > 0.99
    np.testing.assert_allclose(filled[:, painted], sparse[:, painted], atol=0.01)  # the paint is kept
    flats = (filled[4] > 0) & (sparse[4] == 0)
    assert flats.sum() > 5 * painted.sum()  # the areas the strokes touch are filled ...
    np.testing.assert_allclose(filled[4][flats], DEFAULT_FILL_ALPHA)  # ... at the fill's alpha
    # probability 0 draws nothing more: the sparse hint of runs before the fill, bit for bit
    np.testing.assert_array_equal(training_hint(image, np.random.default_rng(5), params, fill_probability=0.0), sparse)
    chosen = [bool((training_hint(image, np.random.default_rng(s), params, fill_probability=0.5)[4] == 0.5).any())
              for s in range(40)]
    assert 8 <= sum(chosen) <= 32
    # the areas for training's area colour loss: the same hint and random stream, the filled areas numbered
    rng = np.random.default_rng(5)
    hint, areas = training_hint(image, rng, params, fill_probability=1.0, with_areas=True)
    np.testing.assert_array_equal(hint, filled)
    after = np.random.default_rng(5)
    training_hint(image, after, params, fill_probability=1.0)
    assert rng.random() == after.random()
    unpainted = sparse[4] == 0
    assert areas.max() >= 1
    np.testing.assert_array_equal((areas > 0)[unpainted], (filled[4] > 0)[unpainted])

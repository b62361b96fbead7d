"""Resizing keeps thin edges alive and never bleeds stroke colour into A = 0 pixels."""
import numpy as np
import pytest
import torch

from preprocessors import (
    HintError,
    inference_hint,
    make_hint,
    random_strokes,
    resize_edges,
    resize_hint,
    resize_hint_batch,
    resize_strokes,
    stretch_note,
)


def thin_lines(size=(100, 100)):
    edges = np.zeros(size, np.float32)
    edges[:, 37] = 1
    edges[53, :] = 1
    return edges


@pytest.mark.parametrize("size", [(10, 10), (33, 47), (7, 99), (100, 30), (250, 180)])
def test_one_pixel_lines_survive_any_resize(size):
    resized = resize_edges(thin_lines(), size)
    assert resized.shape == size
    assert (resized.max(axis=0) > 0.4).all() or (resized.max(axis=1) > 0.4).all()
    assert (resized.max(axis=1) > 0.4).all(), "the vertical line crosses every row"
    assert (resized.max(axis=0) > 0.4).all(), "the horizontal line crosses every column"


NON_INTEGER_SHRINKS = [((100, 200), (32, 64)), ((77, 131), (20, 33)), ((512, 512), (300, 300)), ((64, 96), (33, 95))]


def pooled_cells(length, cells, index):
    """The target cells whose source interval (adaptive max pooling's) holds source ``index``."""
    return [d for d in range(cells) if d * length // cells <= index < -(-(d + 1) * length // cells)]


@pytest.mark.parametrize("source, size", NON_INTEGER_SHRINKS)
def test_border_lines_survive_non_integer_shrinks(source, size):
    height, width = source
    for row in (0, height - 1):
        edges = np.zeros(source, np.float32)
        edges[row] = 1
        assert resize_edges(edges, size)[0 if row == 0 else -1].min() == 1.0, f"row {row} of {height}"
    for col in (0, width - 1):
        edges = np.zeros(source, np.float32)
        edges[:, col] = 1
        assert resize_edges(edges, size)[:, 0 if col == 0 else -1].min() == 1.0, f"column {col} of {width}"


@pytest.mark.parametrize("source, size", NON_INTEGER_SHRINKS)
def test_a_line_lands_in_the_cells_that_hold_it(source, size):
    width, cells = source[1], size[1]
    for col in range(0, width, 7):
        edges = np.zeros(source, np.float32)
        edges[:, col] = 1
        found = list(np.flatnonzero(resize_edges(edges, size).max(axis=0)))
        assert found == pooled_cells(width, cells, col), f"column {col} of {width}"
        assert col * cells // width in found, "the cell that contains the line's left edge"


def test_column_100_of_200_lands_in_column_32_of_64():
    edges = np.zeros((100, 200), np.float32)
    edges[:, 100] = 1
    assert list(np.flatnonzero(resize_edges(edges, (32, 64)).max(axis=0))) == [32]


@pytest.mark.parametrize(
    "source, size", NON_INTEGER_SHRINKS + [((1024, 1024), (600, 512)), ((90, 90), (1, 7)), ((9, 200), (9, 3))]
)
def test_shrinking_is_adaptive_max_pooling(rng, source, size):
    for density in (0.02, 0.5):
        edges = (rng.random(source) < density).astype(np.float32)
        expected = torch.nn.functional.adaptive_max_pool2d(torch.from_numpy(edges)[None, None], size)[0, 0].numpy()
        np.testing.assert_array_equal(resize_edges(edges, size), expected)


@pytest.mark.parametrize("size", [(33, 147), (128, 40), (200, 96)])
def test_mixed_resize_pools_the_shrinking_axis_and_interpolates_the_other(size):
    edges = thin_lines((64, 96))
    resized = resize_edges(edges, size)
    if size[0] <= 64:
        assert (resized.max(axis=0) == 1).all(), "rows are pooled: the horizontal line keeps full strength"
    if size[1] <= 96:
        assert (resized.max(axis=1) == 1).all(), "columns are pooled: the vertical line keeps full strength"
    hint = make_hint(edges, None)
    batch = resize_hint_batch(torch.from_numpy(hint)[None], size)[0, 0].numpy()
    np.testing.assert_allclose(resized, batch, atol=1e-5)


def test_strokes_never_bleed_into_empty_pixels(rng):
    picture = (rng.random((90, 70, 3)) * 255).astype(np.uint8)
    layer = random_strokes(picture, np.random.default_rng(0), blur_prob=0.0)
    for size in ((45, 35), (31, 17), (180, 140), (91, 71)):
        resized = resize_strokes(layer, size)
        assert resized.shape == size + (4,)
        assert np.all(resized[..., :3] <= resized[..., 3:] + 1e-6)
        assert np.all(resized[..., :3][resized[..., 3] == 0] == 0)


def test_hint_resize_numpy_and_torch_agree_on_the_rules(rng):
    picture = (rng.random((64, 96, 3)) * 255).astype(np.uint8)
    hint = make_hint(thin_lines((64, 96)), random_strokes(picture, np.random.default_rng(1)))
    for size in ((32, 48), (16, 24), (128, 192)):
        ours = resize_hint(hint, size)
        batch = resize_hint_batch(torch.from_numpy(hint)[None], size)[0].numpy()
        assert ours.shape == batch.shape == (5,) + size
        assert (ours[0].max(axis=1) > 0.4).all() and (batch[0].max(axis=1) > 0.4).all(), "thin lines survive"
        for strokes in (ours[1:], batch[1:]):
            assert np.all(strokes[:3] <= strokes[3:] + 1e-6)
        np.testing.assert_allclose(ours[4].mean(), batch[4].mean(), rtol=0.05, atol=1e-4)


def test_strokes_of_another_size_are_stretched_to_the_drawing():
    drawing = np.full((64, 64, 3), 255, np.uint8)
    layer = np.zeros((32, 32, 4), np.uint8)
    layer[8:16, 8:16] = (255, 0, 0, 255)
    hint = inference_hint(drawing, layer)
    assert hint.shape == (5, 64, 64)
    assert hint[4, 18:30, 18:30].min() > 0.99 and hint[4, 40:, 40:].max() == 0


def test_bad_sizes_are_refused():
    with pytest.raises(HintError, match="0x10"):
        resize_edges(thin_lines(), (10, 0))
    with pytest.raises(HintError, match="5xHxW"):
        resize_hint(np.zeros((3, 4, 4), np.float32), (2, 2))


def test_stretch_note_says_scaled_or_stretched_by_the_aspect():
    assert stretch_note((512, 768), (512, 768)) is None
    scaled = stretch_note((256, 384), (512, 768))
    assert "384x256" in scaled and "768x512" in scaled and "scaled" in scaled and "stretched" not in scaled
    stretched = stretch_note((512, 512), (480, 640))
    assert "stretched to the drawing's aspect" in stretched and "512x512" in stretched and "640x480" in stretched

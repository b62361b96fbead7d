"""Canny edges: input forms, the torch batch version's agreement with OpenCV, thresholds."""
import numpy as np
import pytest
import skimage.data
import torch

from preprocessors import HintError, canny, canny_batch, lineart_edges


def square_drawing(size=64):
    image = np.full((size, size, 3), 255, np.uint8)
    image[16:48, 16] = image[16:48, 47] = image[16, 16:48] = image[47, 16:48] = 0
    return image


def test_canny_returns_white_on_black_float():
    edges = canny(square_drawing())
    assert edges.shape == (64, 64) and edges.dtype == np.float32
    assert set(np.unique(edges)) == {0.0, 1.0}
    assert edges[30, 14:19].max() == 1 and edges[30, 30] == 0


def test_canny_accepts_every_input_form():
    rgb = square_drawing()
    reference = canny(rgb)
    np.testing.assert_array_equal(canny(rgb[..., 0]), reference)
    np.testing.assert_array_equal(canny(rgb.astype(np.float32) / 255), reference)
    np.testing.assert_array_equal(canny(rgb.astype(np.uint16) * 257), reference)
    rgba = np.concatenate([rgb, np.full((64, 64, 1), 255, np.uint8)], axis=2)
    np.testing.assert_array_equal(canny(rgba), reference)


def test_transparent_pixels_count_as_white_paper():
    rgba = np.zeros((64, 64, 4), np.uint8)  # black but fully transparent: blank paper
    assert canny(rgba).max() == 0
    rgba[20:40, 20:40, 3] = 255  # an opaque black square appears
    assert canny(rgba).max() == 1


@pytest.mark.parametrize("name", ["astronaut", "coffee"])
def test_canny_batch_agrees_with_opencv(name):
    picture = getattr(skimage.data, name)()[::2, ::2]
    batch = torch.from_numpy(np.ascontiguousarray(picture)).permute(2, 0, 1)[None].float() / 255
    found = canny_batch(torch.cat([batch, batch.flip(-1)]), 100, 200)
    assert found.shape == (2, 1) + picture.shape[:2]
    reference = canny(picture)
    for edges, expected in ((found[0, 0].numpy(), reference), (found[1, 0].numpy(), reference[:, ::-1])):
        both = ((edges > 0) & (expected > 0)).sum()
        f1 = 2 * both / (edges.sum() + expected.sum())
        assert f1 >= 0.95, f"edge F1 {f1:.3f} against OpenCV"


def test_canny_batch_takes_grey_batches():
    grey = torch.from_numpy(square_drawing()[..., 0]).float()[None, None] / 255
    np.testing.assert_array_equal(canny_batch(grey)[0, 0].numpy(), canny(square_drawing()))


def test_bad_thresholds_and_shapes():
    with pytest.raises(HintError, match="low <= high"):
        canny(square_drawing(), 200, 100)
    with pytest.raises(HintError, match="Bx3xHxW"):
        canny_batch(torch.zeros(1, 5, 8, 8))


def test_lineart_edges_inverts_dark_lines_on_white():
    edges = lineart_edges(square_drawing())
    assert edges[16, 30] == 1 and edges[30, 30] == 0
    np.testing.assert_array_equal(lineart_edges(255 - square_drawing()), edges)
    np.testing.assert_array_equal(lineart_edges(255 - square_drawing(), invert="yes"), 1 - edges)

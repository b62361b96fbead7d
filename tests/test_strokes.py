"""The procedural stroke generator (against the naive reference) and what people paint."""
import numpy as np
import pytest
import skimage.data

from benchmarks.naive_strokes import naive_random_strokes
from preprocessors import HintError, StrokeParams, random_strokes, user_strokes
from preprocessors.strokes import blur_layer

PICTURE = np.ascontiguousarray(skimage.data.astronaut()[::4, ::4])  # 128x128


def test_same_seed_same_layer_other_seed_other_layer():
    first = random_strokes(PICTURE, np.random.default_rng(7))
    np.testing.assert_array_equal(first, random_strokes(PICTURE, np.random.default_rng(7)))
    assert not np.array_equal(first, random_strokes(PICTURE, np.random.default_rng(8)))


@pytest.mark.parametrize("seed", range(12))
def test_identical_to_naive_reference_without_blur(seed):
    params = StrokeParams(blur_prob=0.0)
    ours = random_strokes(PICTURE, np.random.default_rng(seed), params)
    np.testing.assert_array_equal(ours, naive_random_strokes(PICTURE, np.random.default_rng(seed), params))


def stroke_statistics(layers):
    alpha = np.stack([layer[..., 3] for layer in layers])
    coverage = (alpha > 0).mean(axis=(1, 2))
    return {"coverage": coverage.mean(), "coverage_sd": coverage.std(), "alpha_mean": alpha.mean(),
            "soft_share": ((alpha > 0) & (alpha < 1)).mean() / max((alpha > 0).mean(), 1e-9)}


def test_same_distribution_as_naive_reference_over_1000_samples():
    image = np.ascontiguousarray(PICTURE[::2, ::2])  # 64x64 keeps the naive reference fast
    params = StrokeParams(length_min=20, length_max=100)
    ours = stroke_statistics([random_strokes(image, np.random.default_rng(s), params) for s in range(1000)])
    naive = stroke_statistics([naive_random_strokes(image, np.random.default_rng(s), params) for s in range(1000)])
    for key in ours:
        assert ours[key] == pytest.approx(naive[key], rel=0.05), key


def test_walk_lengths_and_thickness_follow_the_parameters():
    blank = np.zeros((400, 400, 3), np.uint8) + 128
    thin = random_strokes(blank, np.random.default_rng(0), count_min=1, count_max=1, length_min=50, length_max=50,
                          thickness=(0,), blur_prob=0.0)
    assert 1 <= (thin[..., 3] > 0).sum() <= 51
    thick = random_strokes(blank, np.random.default_rng(0), count_min=1, count_max=1, length_min=50, length_max=50,
                           thickness=(3,), blur_prob=0.0)
    assert (thick[..., 3] > 0).sum() > 3 * (thin[..., 3] > 0).sum()
    assert np.all((thick[..., 3] > 0) >= (thin[..., 3] > 0)), "thickening only adds pixels"


def test_power_of_two_counts():
    params = StrokeParams(count_min=1, count_max=128, count_pow2=True)
    from preprocessors.strokes import draw_count
    counts = {draw_count(np.random.default_rng(s), params) for s in range(200)}
    assert counts == {1, 2, 4, 8, 16, 32, 64, 128}


def test_mean_colour_strokes_are_flat():
    layer = random_strokes(PICTURE, np.random.default_rng(2), count_min=1, count_max=1, colour="mean", blur_prob=0.0)
    colours = layer[layer[..., 3] > 0][:, :3]
    assert np.ptp(colours, axis=0).max() < 1e-6


def test_dots_are_small_squares_of_local_mean_colour():
    image = np.zeros((64, 64, 3), np.uint8)
    image[:, 32:] = 200
    layer = random_strokes(image, np.random.default_rng(5), count_min=1, count_max=1, length_min=1, length_max=1,
                           thickness=(0,), dots_max=6, dot_size_min=4, dot_size_max=4, blur_prob=0.0)
    assert (layer[..., 3] > 0).sum() > 2, "dots were added to the one-pixel stroke"
    assert np.all(layer[..., :3] <= layer[..., 3:] + 1e-6)


@pytest.mark.parametrize("mode", ["gaussian", "downscale"])
def test_blur_softens_alpha_and_keeps_premultiplication(mode):
    layer = random_strokes(PICTURE, np.random.default_rng(4), blur_prob=1.0, blur_mode=mode)
    alpha = layer[..., 3]
    assert ((alpha > 0) & (alpha < 1)).any()
    assert np.all(layer[..., :3] <= alpha[..., None] + 1e-5)
    assert np.all(layer[..., :3][alpha == 0] == 0)


def test_box_blur_equals_whole_layer_blur():
    import cv2
    layer = np.zeros((100, 120, 4), np.float32)
    layer[40:45, 50:70] = (0.2, 0.4, 0.6, 1.0)
    expected = cv2.GaussianBlur(layer, (0, 0), sigmaX=2.5)
    blur_layer(layer, 2.5)
    np.testing.assert_allclose(layer, expected, atol=1e-6)


def test_invalid_parameters_are_named():
    with pytest.raises(HintError, match="count_min"):
        StrokeParams(count_min=5, count_max=2)
    with pytest.raises(HintError, match="blur_prob"):
        StrokeParams(blur_prob=2)
    with pytest.raises(HintError, match="unknown stroke parameters"):
        StrokeParams.from_dict({"colour": "pixel", "lenght_max": 3})
    assert StrokeParams.from_dict(StrokeParams(thickness=[1, 2]).to_dict()).thickness == (1, 2)


class TestUserStrokes:
    def test_transparent_png_layer(self):
        layer = np.zeros((10, 10, 4), np.uint8)
        layer[2:4, 2:8] = (255, 128, 0, 255)
        layer[6, 6] = (255, 255, 255, 128)  # half-transparent antialiasing
        strokes = user_strokes(layer)
        assert strokes.shape == (10, 10, 4) and strokes.dtype == np.float32
        np.testing.assert_allclose(strokes[3, 3], (1, 128 / 255, 0, 1))
        np.testing.assert_allclose(strokes[6, 6], (128 / 255,) * 4, atol=1e-6)
        assert strokes[0, 0].max() == 0

    def test_rgb_with_mask(self):
        rgb = np.full((10, 10, 3), 0.5, np.float32)
        mask = np.zeros((10, 10), np.float32)
        mask[5, 5] = 1
        strokes = user_strokes(rgb, mask=mask)
        np.testing.assert_allclose(strokes[5, 5], (0.5, 0.5, 0.5, 1))
        assert strokes[..., :3][mask == 0].max() == 0

    def test_rgb_on_plain_background(self):
        rgb = np.full((10, 10, 3), 255, np.uint8)
        rgb[1, 1] = (10, 200, 30)
        strokes = user_strokes(rgb, background=(255, 255, 255))
        assert strokes[..., 3].sum() == 1 and strokes[1, 1, 3] == 1
        np.testing.assert_allclose(strokes[1, 1, :3], np.array((10, 200, 30)) / 255, atol=1e-6)

    def test_empty_layer_is_valid(self):
        strokes = user_strokes(np.zeros((10, 10, 4), np.uint8))
        assert strokes.max() == 0

    def test_rgb_without_a_way_to_find_strokes_says_what_to_do(self):
        with pytest.raises(HintError, match="mask or a background colour"):
            user_strokes(np.zeros((10, 10, 3), np.uint8))

    def test_mask_size_mismatch_says_both_sizes(self):
        with pytest.raises(HintError, match="8x6.*10x10"):
            user_strokes(np.zeros((10, 10, 3), np.uint8), mask=np.zeros((6, 8), np.float32))

"""The hint contract: layout, ranges, preview, batch version (the edge polarity: test_polarity)."""
import numpy as np
import pytest
import torch

from preprocessors import (
    HINT_CHANNELS,
    HINT_VERSION,
    HintError,
    hint_preview,
    inference_hint,
    make_hint,
    make_hint_batch,
    random_strokes,
    strokes_removed,
    training_hint,
    user_strokes,
    validate_hint,
)


def test_contract_constants():
    assert HINT_CHANNELS == 5 and HINT_VERSION == 1


@pytest.fixture
def picture(rng):
    return (rng.random((48, 64, 3)) * 255).astype(np.uint8)


def test_training_hint_obeys_contract(picture):
    hint = training_hint(picture, np.random.default_rng(3))
    assert hint.shape == (5, 48, 64) and hint.dtype == np.float32
    validate_hint(hint)
    alpha, rgb = hint[4], hint[1:4]
    assert alpha.max() > 0, "the default distribution always draws at least one stroke"
    assert np.all(rgb[:, alpha == 0] == 0), "RGB must be 0 where A = 0"
    assert np.all(rgb <= alpha[None] + 1e-6), "RGB is premultiplied by A"
    assert set(np.unique(hint[0])) <= {0.0, 1.0}
    assert 0 < hint[0].mean() < 0.5, "white edges on black: the edge pixels are the few ones"


def test_batch_version_matches_numpy(picture, rng):
    edges = (rng.random((2, 48, 64)) > 0.9).astype(np.float32)
    layers = [random_strokes(picture, np.random.default_rng(s)) for s in range(2)]
    batch = make_hint_batch(torch.from_numpy(edges)[:, None], torch.from_numpy(np.stack(layers)).permute(0, 3, 1, 2))
    assert batch.shape == (2, 5, 48, 64)
    for i in range(2):
        np.testing.assert_array_equal(batch[i].numpy(), make_hint(edges[i], layers[i]))


def test_make_hint_rejects_mismatched_sizes():
    with pytest.raises(HintError, match="64x48.*32x32"):
        make_hint(np.zeros((48, 64), np.float32), np.zeros((32, 32, 4), np.float32))
    with pytest.raises(HintError, match="RGBA"):
        make_hint(np.zeros((8, 8), np.float32), np.zeros((8, 8, 3), np.float32))
    with pytest.raises(HintError, match="batch or size"):
        make_hint_batch(torch.zeros(1, 1, 8, 8), torch.zeros(2, 4, 8, 8))


def test_validate_hint_catches_bad_hints():
    good = np.zeros((5, 4, 4), np.float32)
    validate_hint(good)
    validate_hint(torch.zeros(2, 5, 4, 4))
    with pytest.raises(HintError, match="shape"):
        validate_hint(np.zeros((3, 4, 4), np.float32))
    bad = good.copy(); bad[0, 0, 0] = np.nan
    with pytest.raises(HintError, match="NaN"):
        validate_hint(bad)
    bad = good.copy(); bad[2, 1, 1] = 1.5
    with pytest.raises(HintError, match=r"\[0, 1\]"):
        validate_hint(bad)


def test_preview_shows_edges_light_and_strokes_in_colour():
    layer = np.zeros((8, 8, 4), np.float32)
    layer[2, 2] = (1, 0, 0, 1)
    edges = np.zeros((8, 8), np.float32)
    edges[5, :] = 1
    preview = hint_preview(make_hint(edges, layer))
    assert preview.shape == (8, 8, 3) and preview.dtype == np.uint8
    assert tuple(preview[2, 2]) == (255, 0, 0)
    assert preview[5, 0].min() > 150 and preview[0, 0].max() == 0


def test_preview_is_stroke_colour_over_grey_edges(rng):
    hint = rng.random((5, 16, 24), dtype=np.float32)
    hint[1:4] *= hint[4]
    hint[1, 0, :4] = (1.2, -0.1, 0.5, 0.999)  # out of range: clipped
    expected = np.moveaxis(hint[1:4], 0, 2) + 0.8 * (hint[0] * (1.0 - hint[4]))[..., None]
    expected = np.clip(expected, 0.0, 1.0) * 255.0
    assert np.abs(hint_preview(hint) - expected).max() <= 0.5 + 1e-3


def test_user_strokes_float_ranges():
    rgb = np.full((8, 8, 3), 0.5, np.float32)
    mask = np.ones((8, 8), np.float32)
    mask[0, 0], mask[0, 1] = -0.0005, 1.0005  # within 1e-3 of [0, 1]: clipped
    layer = user_strokes(rgb, mask)
    assert layer[0, 0, 3] == 0.0 and layer[0, 1, 3] == 1.0 and layer[0, 1, 0] == 0.5
    assert not np.shares_memory(layer, rgb) and not np.shares_memory(layer, mask)
    for bad in (np.nan, np.inf, -np.inf):
        broken_rgb, broken_mask = rgb.copy(), mask.copy()
        broken_rgb[1, 1, 1], broken_mask[1, 1] = bad, bad
        with pytest.raises(HintError, match="stroke layer holds NaN or inf"):
            user_strokes(broken_rgb, mask)
        with pytest.raises(HintError, match="stroke mask holds NaN or inf"):
            user_strokes(rgb, broken_mask)


def test_inference_hint_uses_the_same_contract(picture):
    layer = np.zeros((48, 64, 4), np.uint8)
    layer[10:14, 10:30] = (0, 255, 0, 255)
    hint = inference_hint(picture, layer)
    validate_hint(hint)
    np.testing.assert_array_equal(hint[1:], np.moveaxis(user_strokes(layer), 2, 0))
    assert inference_hint(picture)[1:].max() == 0, "no strokes: A = 0 everywhere"


def test_strokes_removed_clears_the_stroke_channels_of_a_copy_and_keeps_the_edges():
    hint = np.random.default_rng(0).random((2, 5, 6, 7)).astype(np.float32)
    for given in (hint, torch.from_numpy(hint)):
        bare = strokes_removed(given)
        assert type(bare) is type(given) and float(np.abs(np.asarray(bare[:, 1:])).max()) == 0.0
        assert np.array_equal(np.asarray(bare[:, 0]), hint[:, 0]) and float(np.asarray(given[:, 4]).max()) > 0
    assert float(np.abs(strokes_removed(hint[0])[1:]).max()) == 0.0  # one hint, 5xHxW

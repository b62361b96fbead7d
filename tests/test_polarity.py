"""The edge polarity module: the rule that picks a model's polarity and the one conversion into it."""
import numpy as np
import pytest
import torch

from preprocessors import (
    BLACK_ON_WHITE,
    UNRECORDED_EDGE_POLARITY,
    WHITE_ON_BLACK,
    HintError,
    resolve_polarity,
    to_model_polarity,
    training_hint,
)


@pytest.fixture
def hint():
    picture = (np.random.default_rng(0).random((48, 64, 3)) * 255).astype(np.uint8)
    return training_hint(picture, np.random.default_rng(1))


def test_conversion_flips_only_the_edge_channel_for_black_on_white_models(hint):
    black = to_model_polarity(hint, BLACK_ON_WHITE)
    np.testing.assert_array_equal(black[0], 1.0 - hint[0])
    np.testing.assert_array_equal(black[1:], hint[1:])
    assert black is not hint and hint[0].mean() < 0.5, "a copy: the library's hint stays white on black"
    batch = torch.from_numpy(np.stack([hint, hint]))
    np.testing.assert_array_equal(to_model_polarity(batch, BLACK_ON_WHITE)[1].numpy(), black)
    assert batch[:, 0].mean() < 0.5, "the torch input is not changed in place either"


def test_white_on_black_models_get_the_hint_itself(hint):
    assert to_model_polarity(hint, WHITE_ON_BLACK) is hint
    batch = torch.from_numpy(hint)[None]
    assert to_model_polarity(batch, WHITE_ON_BLACK) is batch


@pytest.mark.parametrize("recorded, chosen, expected", [
    (WHITE_ON_BLACK, None, (WHITE_ON_BLACK, "metadata")),
    (BLACK_ON_WHITE, WHITE_ON_BLACK, (BLACK_ON_WHITE, "metadata")),  # the file knows how it was trained
    (None, WHITE_ON_BLACK, (WHITE_ON_BLACK, "argument")),
    (None, None, (UNRECORDED_EDGE_POLARITY, "default")),
])
def test_the_recorded_polarity_wins_then_the_choice_then_the_unrecorded_default(recorded, chosen, expected):
    assert resolve_polarity(recorded, chosen) == expected
    assert UNRECORDED_EDGE_POLARITY == BLACK_ON_WHITE, "files without our metadata are the original model's"


@pytest.mark.parametrize("recorded, chosen", [("inverted", None), (None, "inverted"), (WHITE_ON_BLACK, "inverted")])
def test_unknown_polarities_are_refused_with_the_known_ones(recorded, chosen, hint):
    with pytest.raises(HintError, match="white_on_black, black_on_white"):
        resolve_polarity(recorded, chosen)
    with pytest.raises(HintError, match="white_on_black"):
        to_model_polarity(hint, "inverted")

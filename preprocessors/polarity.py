"""Edge polarity: the rule that says which one a model expects, and the one conversion of a hint into it.

The library builds every hint with white edges on black (edge channel 1 on an edge, 0 elsewhere): building,
resizing, fitting and previewing never look at a model. A model may expect ``BLACK_ON_WHITE`` edges instead
(the original colour-stroke model). Which one:

``resolve_polarity(recorded, chosen)``: the polarity the checkpoint records (``colorstroke.edge_polarity``;
every file this project writes has it) wins; else the one the person chose in the host; else
``UNRECORDED_EDGE_POLARITY`` (black on white: the only 5-channel colour-stroke files without our metadata are
the original model's), which every host says once per file (``unrecorded_polarity_note``).

``to_model_polarity(hint, polarity)`` is applied once, where a hint meets a model: ComfyUI's apply node, the
sd-webui-controlnet and Forge glue, the trainer's loss, validation and ``model.inference``.
"""
from __future__ import annotations

import numpy as np

from .contract import EDGE_CHANNEL, HintError

WHITE_ON_BLACK = "white_on_black"
BLACK_ON_WHITE = "black_on_white"
EDGE_POLARITIES = (WHITE_ON_BLACK, BLACK_ON_WHITE)
DEFAULT_EDGE_POLARITY = WHITE_ON_BLACK  # what this project builds, trains and records
UNRECORDED_EDGE_POLARITY = BLACK_ON_WHITE  # what a checkpoint that records none is taken to expect


def check_polarity(polarity: str) -> str:
    """Return ``polarity`` if it names an edge polarity of the contract, else raise HintError."""
    if polarity not in EDGE_POLARITIES:
        raise HintError(f"edge polarity {polarity!r} is unknown; use one of {', '.join(EDGE_POLARITIES)}")
    return polarity


def resolve_polarity(recorded: str | None, chosen: str | None) -> tuple[str, str]:
    """(polarity, source) a model expects: the one its file ``recorded`` ("metadata"), else the person's
    ``chosen`` one ("argument"), else ``UNRECORDED_EDGE_POLARITY`` ("default"). Raises HintError for a name
    that is no polarity."""
    if chosen is not None:
        check_polarity(chosen)
    if recorded is not None:
        return check_polarity(recorded), "metadata"
    if chosen is not None:
        return chosen, "argument"
    return UNRECORDED_EDGE_POLARITY, "default"


def unrecorded_polarity_note(source: str, remedy: str) -> str:
    """The note every host gives once per file when ``source`` records no edge polarity and the person chose none.

    remedy: how to choose white_on_black in that host, e.g. "set polarity_if_unknown to white_on_black".
    """
    return (f"no edge polarity recorded in {source}; assuming {UNRECORDED_EDGE_POLARITY} (the original colour-stroke "
            f"model); {remedy} if your model was trained with white-on-black edges")


def to_model_polarity(hint, polarity: str):
    """A hint as this library builds it (numpy or torch, [B]x5xHxW, white edges on black) in the edge
    ``polarity`` of the model it is handed to: the hint itself for white_on_black, else a copy with the edge
    channel inverted (1 - e)."""
    if check_polarity(polarity) == WHITE_ON_BLACK:
        return hint
    out = hint.copy() if isinstance(hint, np.ndarray) else hint.clone()
    out[..., EDGE_CHANNEL, :, :] = 1.0 - out[..., EDGE_CHANNEL, :, :]
    return out

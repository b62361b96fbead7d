"""A STROKE_HINT made ready for one loaded ControlNet (host-free: works on any object shaped like
ComfyUI's ``comfy.controlnet.ControlNet``)."""
from __future__ import annotations

from ..preprocessors import (
    DEFAULT_EDGE_POLARITY, HINT_CHANNELS, UNRECORDED_EDGE_POLARITY, HintError, check_polarity, convert_polarity,
)
from .common import POLARITY_ATTR
from .host import tell


def model_hint_channels(control_net) -> int:
    """The number of hint channels the ControlNet's first hint convolution takes."""
    block = getattr(getattr(control_net, "control_model", None), "input_hint_block", None)
    if block is None:
        raise HintError(
            f"this CONTROL_NET ({type(control_net).__name__}) is not a ControlNet with an image hint; "
            "load the Color Stroke model with Load Color Stroke ControlNet, and use the stock Apply ControlNet "
            "node for other kinds"
        )
    return int(block[0].weight.shape[1])


def model_polarity(control_net) -> str:
    """The edge polarity the loader recorded; if none did, ``UNRECORDED_EDGE_POLARITY`` with a warning (the
    stock loader does not read the file's polarity, as for any file that records none)."""
    polarity = getattr(control_net, POLARITY_ATTR, None)
    if polarity is None:
        tell("this CONTROL_NET was not loaded by Load Color Stroke ControlNet, so its edge polarity is unknown; "
             f"assuming {UNRECORDED_EDGE_POLARITY} (the original colour-stroke model). Load it with Load Color "
             "Stroke ControlNet, which reads the polarity the file records")
        return UNRECORDED_EDGE_POLARITY
    return check_polarity(polarity)


def hint_for_model(hint, control_net):
    """STROKE_HINT Bx5xHxW (edges white on black) -> BxHxWx5 in the model's polarity, as an image for
    ComfyUI's ControlNet apply (which moves channels back first). Raises HintError on a channel mismatch."""
    if hint.ndim != 4 or hint.shape[1] != HINT_CHANNELS:
        raise HintError(f"a STROKE_HINT is Bx{HINT_CHANNELS}xHxW, got shape {tuple(hint.shape)}; "
                        "connect the hint output of Color Stroke + Canny")
    channels = model_hint_channels(control_net)
    if channels != HINT_CHANNELS:
        raise HintError(
            f"this ControlNet takes a {channels}-channel hint but the Color Stroke hint has {HINT_CHANNELS} channels; "
            f"it is not a Color Stroke ControlNet. Use the stock Apply ControlNet node with an IMAGE "
            f"(e.g. from the Canny node) for it, or load a Color Stroke model"
        )
    return convert_polarity(hint, DEFAULT_EDGE_POLARITY, model_polarity(control_net)).movedim(1, -1)

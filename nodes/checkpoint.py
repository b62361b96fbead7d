"""Load a Color Stroke ControlNet file with ComfyUI's loader after ``model/`` has checked it."""
import logging
import os

from ..model import CheckpointError, check_color_stroke, inspect_checkpoint
from ..preprocessors import HINT_CHANNELS, UNRECORDED_EDGE_POLARITY, unrecorded_polarity_note
from .common import POLARITY_ATTR
from .host import tell

# what model/ says a file is -> the stock ComfyUI node that loads such a file
COMFY_NODE_FOR = {
    "a LoRA": "Load LoRA (file in models/loras)",
    "a Stable Diffusion model checkpoint (UNet, VAE, text encoder)": "Load Checkpoint (file in models/checkpoints)",
    "a UNet": "Load Diffusion Model (file in models/diffusion_models)",
    "a VAE": "Load VAE (file in models/vae)",
    "a text encoder": "Load CLIP (file in models/text_encoders)",
}
STOCK_CONTROLNET_NODES = "Load ControlNet Model and Apply ControlNet, with an IMAGE hint such as the Canny node's"
_told = set()


def check_file(path: str, polarity_if_unknown: str, name: str | None = None):
    """``model.CheckpointInfo`` of the file, or CheckpointError saying what it is and which node loads it.

    name: the file as the person picked it (its name in models/controlnet); messages show it, not the path.
    """
    name = name or os.path.basename(path)
    try:
        info = inspect_checkpoint(path, polarity=polarity_if_unknown)
    except CheckpointError as error:
        raise CheckpointError(str(error).replace(path, f"{name} (in models/controlnet)")) from None
    try:
        return check_color_stroke(info, source=repr(name))
    except CheckpointError as error:
        if info.kind == "controlnet" and info.hint_channels != HINT_CHANNELS:
            advice = STOCK_CONTROLNET_NODES
        else:
            advice = COMFY_NODE_FOR.get(info.kind)
        if advice is None:
            raise
        raise CheckpointError(f"{error}. In ComfyUI, use {advice}.") from None


def polarity_note(info, name: str) -> tuple[int, str] | None:
    """(log level, message) saying which edge polarity a file that records none is taken to expect; None
    when the file records it."""
    if info.polarity_source == "metadata":
        return None
    if info.edge_polarity == UNRECORDED_EDGE_POLARITY:
        return logging.WARNING, unrecorded_polarity_note(repr(name), "set polarity_if_unknown to white_on_black")
    return logging.INFO, (f"no edge polarity recorded in {name!r}; using {info.edge_polarity} as "
                          "polarity_if_unknown says")


def tell_once(note: tuple[int, str] | None) -> None:
    """Log ``note`` the first time it comes up in this ComfyUI process (once per file and choice)."""
    if note is not None and note[1] not in _told:
        _told.add(note[1])
        tell(note[1], note[0])


def load_color_stroke(path: str, polarity_if_unknown: str, name: str | None = None):
    """ComfyUI ``ControlNet`` for the file at ``path``, with the edge polarity it expects recorded on it.

    The polarity is the file's; for a file that records none, ``polarity_if_unknown`` (said once per file).
    name: the file's name in models/controlnet, for messages (default: the path's last part).
    """
    import comfy.controlnet

    name = name or os.path.basename(path)
    info = check_file(path, polarity_if_unknown, name)
    tell_once(polarity_note(info, name))
    control_net = comfy.controlnet.load_controlnet(path)
    if control_net is None:
        raise CheckpointError(f"ComfyUI could not load {name!r} although it looks like a Color "
                              f"Stroke ControlNet ({info.layout} layout); see the console log for ComfyUI's reason")
    setattr(control_net, POLARITY_ATTR, info.edge_polarity)
    return control_net

"""Load a Color Stroke ControlNet file with ComfyUI's loader after ``model/`` has checked it."""
import os

from ..model import CheckpointError, check_color_stroke, inspect_checkpoint
from ..preprocessors import HINT_CHANNELS
from .common import POLARITY_ATTR

# what model/ says a file is -> the stock ComfyUI node that loads such a file
COMFY_NODE_FOR = {
    "a LoRA": "Load LoRA (file in models/loras)",
    "a Stable Diffusion model checkpoint (UNet, VAE, text encoder)": "Load Checkpoint (file in models/checkpoints)",
    "a UNet": "Load Diffusion Model (file in models/diffusion_models)",
    "a VAE": "Load VAE (file in models/vae)",
    "a text encoder": "Load CLIP (file in models/text_encoders)",
}
STOCK_CONTROLNET_NODES = "Load ControlNet Model and Apply ControlNet, with an IMAGE hint such as the Canny node's"


def check_file(path: str, polarity_if_unknown: str):
    """``model.CheckpointInfo`` of the file, or CheckpointError saying what it is and which node loads it."""
    name = os.path.basename(path)
    info = inspect_checkpoint(path, polarity=polarity_if_unknown)
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


def load_color_stroke(path: str, polarity_if_unknown: str):
    """ComfyUI ``ControlNet`` for the file at ``path``, with the edge polarity it expects recorded on it."""
    import comfy.controlnet

    info = check_file(path, polarity_if_unknown)
    control_net = comfy.controlnet.load_controlnet(path)
    if control_net is None:
        raise CheckpointError(f"ComfyUI could not load {os.path.basename(path)!r} although it looks like a Color "
                              f"Stroke ControlNet ({info.layout} layout); see the console log for ComfyUI's reason")
    setattr(control_net, POLARITY_ATTR, info.edge_polarity)
    return control_net

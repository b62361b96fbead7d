"""What needs ComfyUI itself, imported only when a node runs inside it: its ``nodes`` module, its ControlNet
loader (after ``model/`` has checked the file) and its temp folder."""
import logging
import os
import sys

from ..model import CheckpointError, check_color_stroke, inspect_checkpoint
from ..model.families import SDXL_ADDED_EMBED_DIM, family_of, family_to_check
from ..model.validate import family_mismatch
from ..preprocessors import HINT_CHANNELS, UNRECORDED_EDGE_POLARITY, unrecorded_polarity_note
from .names import FAMILY_ATTR, POLARITY_ATTR, TRAINED_FILL_ATTR, tell


def comfy_nodes():
    """ComfyUI's top-level ``nodes`` module; it is always loaded before ComfyUI loads custom nodes.

    Looked up in ``sys.modules`` rather than imported: outside ComfyUI, ``import nodes`` could find
    this package's own ``nodes`` folder.
    """
    module = sys.modules.get("nodes")
    if module is None or not hasattr(module, "ControlNetApplyAdvanced"):
        raise RuntimeError("ComfyUI's nodes module is not loaded: this node runs inside ComfyUI only")
    return module


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
        return check_color_stroke(info, source=repr(name), family=family_to_check(info.family))
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
    setattr(control_net, TRAINED_FILL_ATTR, info.fill)
    setattr(control_net, FAMILY_ATTR, (info.family, name))
    return control_net


def sampled_family(model) -> str:
    """The family of the model a KSampler samples (ComfyUI's ``BaseModel``), from its UNet config: its text width
    and whether it has SDXL's added embedding (``adm_in_channels``)."""
    config = model.model_config.unet_config
    return family_of(config.get("context_dim"), config.get("adm_in_channels") == SDXL_ADDED_EMBED_DIM)


def guard_family(conditioning, control_net) -> None:
    """Make each copy of ``control_net`` attached to ``conditioning`` (its ControlNet chains) check, as sampling
    starts, that the sampled model is of the ControlNet's family: ComfyUI's error dialog then names both families,
    where a mismatch would otherwise fail deep in the ControlNet with a shape error. A copy shares the loaded
    ControlNet's weights (``shared_weights``); already guarded copies are left as they are."""
    family, name = getattr(control_net, FAMILY_ATTR, (None, None))
    if family is None:
        return
    for _, options in conditioning:
        copy = options.get("control")
        while copy is not None:
            if shared_weights(copy) is shared_weights(control_net) and "pre_run" not in vars(copy):
                copy.pre_run = _family_checked(copy.pre_run, family, name)
            copy = copy.previous_controlnet


def shared_weights(control_net):
    """What every copy of a loaded ControlNet shares with it: a ControlNet's ``control_model``, a control-LoRA's
    file tensors (``control_weights``: its ``control_model`` is built per copy as sampling starts)."""
    weights = getattr(control_net, "control_weights", None)
    return weights if weights is not None else control_net.control_model


def _family_checked(pre_run, family: str, name: str):
    def checked(model, percent_to_timestep_function):
        sampled = sampled_family(model)
        if sampled != family:
            raise CheckpointError(family_mismatch(family, sampled, repr(name), "being sampled") + ". In ComfyUI, "
                                  "pick the ControlNet or the checkpoint of the other family in the Load nodes.")
        return pre_run(model, percent_to_timestep_function)

    return checked


def save_preview(drawing) -> dict:
    """The first image of an IMAGE batch saved to ComfyUI's temp folder; its reference for /view."""
    import folder_paths
    from PIL import Image

    from .hint_tensors import to_uint8

    folder, name, counter, subfolder, _ = folder_paths.get_save_image_path(
        "color_stroke_drawing", folder_paths.get_temp_directory(), drawing.shape[2], drawing.shape[1])
    filename = f"{name}_{counter:05}_.png"
    Image.fromarray(to_uint8(drawing[:1, ..., :3])[0]).save(os.path.join(folder, filename), compress_level=1)
    return {"filename": filename, "subfolder": subfolder, "type": "temp"}

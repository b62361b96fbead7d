"""The ControlNet to train, through ``model/``: built from the base UNet, or from an existing ControlNet
(widened when it has 3 channels), with the edge polarity to train it in. The loop runs, exports and reads it
back with ``model``'s own functions."""
from __future__ import annotations

from pathlib import Path

from model import (
    CheckpointError,
    build_controlnet,
    inspect_checkpoint,
    load_checkpoint,
    set_middle_block_only,
    widen_controlnet,
)
from model.control_lora import add_low_rank
from model.families import model_family
from preprocessors import DEFAULT_EDGE_POLARITY, WHITE_ON_BLACK

from .config import ConfigError


def build(unet, config):
    """(ControlNetModel to train, edge polarity to train it in, where that polarity comes from).

    The model is a 5-channel copy of ``unet``'s encoder (with ``config.lora_rank``, its copied layers frozen and
    learning low-rank differences: ``model.control_lora.add_low_rank``), or ``config.controlnet_init`` (one of ours,
    or a 3-channel ControlNet widened by ``model.widen_controlnet``; a control-LoRA is rebuilt on ``unet``);
    middle-block-only mode as
    ``config.middle_block_only`` says. The polarity is ``init_polarity``'s (ConfigError on a conflict).
    """
    if not config.controlnet_init:
        polarity = config.polarity or DEFAULT_EDGE_POLARITY
        controlnet = build_controlnet(unet, middle_block_only=config.middle_block_only)
        if config.lora_rank:
            add_low_rank(controlnet, config.lora_rank)
        return controlnet, polarity, "--polarity" if config.polarity else "default"
    path, family = config.controlnet_init, checked_family(config, model_family(unet))
    try:
        channels = inspect_checkpoint(path).hint_channels if Path(path).is_file() else None
    except CheckpointError:
        channels = None  # load_checkpoint below says what is wrong with it
    if channels == 3:  # a Canny ControlNet sees white edges on black: so does its widened copy
        controlnet, recorded = load_checkpoint(path, WHITE_ON_BLACK, family=family, hint_channels=3)
        controlnet = widen_controlnet(controlnet)
    else:
        controlnet, recorded = load_checkpoint(path, config.polarity or DEFAULT_EDGE_POLARITY, family=family,
                                               base_unet=unet)
    polarity, source = init_polarity(config.polarity, recorded, path)
    if controlnet.config.cross_attention_dim != unet.config.cross_attention_dim:
        raise CheckpointError(f"--controlnet_init {path!r} has cross-attention width "
                              f"{controlnet.config.cross_attention_dim} but the base has "
                              f"{unet.config.cross_attention_dim}")
    return set_middle_block_only(controlnet.float(), config.middle_block_only), polarity, source


def trained_parameters(controlnet) -> list:
    """The parameters training changes (all but a control-LoRA's frozen base weights), in the model's order: what the
    optimiser, the EMA and the memory estimate count."""
    return [p for p in controlnet.parameters() if p.requires_grad]


def checked_family(config, family: str) -> str | None:
    """The base family a ControlNet of this run must be made for (``model.load_checkpoint``'s ``family``): the base's
    ``family``, or any (None) with --allow_non_sd15 (tiny demo and test models, whose sizes are no family's)."""
    return None if config.allow_non_sd15 else family


def init_polarity(given: str | None, recorded: dict, path) -> tuple[str, str]:
    """(edge polarity to fine-tune ``--controlnet_init`` in, where it comes from).

    given: ``--polarity`` or None when not passed. recorded: the init's metadata as ``load_checkpoint``
    returns it (hint_channels, edge_polarity, polarity_source). A 3-channel ControlNet is white_on_black
    (Canny ControlNets see white edges on black); a file recording a polarity keeps it. Raises
    ConfigError when ``given`` contradicts either, or when a 5-channel file records none and none is given.
    """
    if recorded["hint_channels"] == 3:
        required = WHITE_ON_BLACK
        source = f"widened 3-channel ControlNet {str(path)!r} (Canny ControlNets see white edges on black)"
    elif recorded["polarity_source"] == "metadata":
        required, source = recorded["edge_polarity"], f"recorded in --controlnet_init {str(path)!r}"
    elif given:
        return given, "--polarity (--controlnet_init records none)"
    else:
        raise ConfigError(f"--controlnet_init {str(path)!r} records no edge polarity, so the polarity of its hints is "
                          "unknown: pass --polarity black_on_white for the original colour-stroke model, or --polarity "
                          "white_on_black for a model trained on white edges on black")
    if given and given != required:
        raise ConfigError(f"--polarity {given} contradicts the {source}: it sees {required} edges, and fine-tuning it "
                          f"on {given} hints would flip them. Leave --polarity out (training then uses {required})")
    return required, source

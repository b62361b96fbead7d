"""The ControlNet being trained, through ``model/``: built from the base UNet (or an existing
ControlNet, widened when it has 3 channels), run beside the UNet, exported and read back."""
from __future__ import annotations

from pathlib import Path

from model import (
    CheckpointError, build_controlnet, controlnet_residuals, inspect_checkpoint, load_checkpoint, save_checkpoint,
    set_middle_block_only, widen_controlnet,
)


def build(unet, config):
    """The 5-channel ControlNetModel to train: a copy of ``unet``'s encoder, or ``config.controlnet_init``
    (one of ours, or a 3-channel ControlNet widened by ``model.widen_controlnet``); middle-block-only
    mode as ``config.middle_block_only`` says."""
    if not config.controlnet_init:
        return build_controlnet(unet, middle_block_only=config.middle_block_only)
    sd15_only = not config.allow_non_sd15
    try:
        channels = inspect_checkpoint(config.controlnet_init).hint_channels if Path(config.controlnet_init).is_file() else None
    except CheckpointError:
        channels = None  # load_checkpoint below says what is wrong with it
    if channels == 3:
        controlnet = widen_controlnet(load_checkpoint(config.controlnet_init, sd15_only=sd15_only, hint_channels=3)[0])
    else:
        controlnet = load_checkpoint(config.controlnet_init, config.polarity, sd15_only=sd15_only)[0]
    if controlnet.config.cross_attention_dim != unet.config.cross_attention_dim:
        raise CheckpointError(f"--controlnet_init {config.controlnet_init!r} has cross-attention width "
                              f"{controlnet.config.cross_attention_dim} but the base has {unet.config.cross_attention_dim}")
    return set_middle_block_only(controlnet.float(), config.middle_block_only)


def residuals(controlnet, noisy, timesteps, text, hint, middle_block_only: bool):
    """(down-block residuals, middle residual) for the UNet, by ``model.controlnet_residuals`` (in
    middle-block-only mode the down residuals are zeros outside the autograd graph).

    The mode is passed in rather than read from the model: under multi-GPU training ``controlnet`` is
    accelerate's DDP wrapper, which must be the one called (gradient sync) and does not carry the model's flag.
    """
    return controlnet_residuals(controlnet, noisy, timesteps, text, hint, middle_only=middle_block_only)


def export(controlnet, path, layout: str, dtype: str, metadata: dict) -> Path:
    """Write ``controlnet`` as one .safetensors file (atomic) with the hint contract and ``metadata``."""
    return save_checkpoint(controlnet, path, layout=layout, dtype=dtype, metadata=metadata)


def load_exported(path, allow_non_sd15: bool = False):
    """(ControlNetModel, metadata dict) read back from an exported file."""
    return load_checkpoint(path, sd15_only=not allow_non_sd15)

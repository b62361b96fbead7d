"""The ControlNet being trained: built from the base UNet, run beside it, exported and read back.

TEMPORARY STAND-IN until ``model/`` (issue 3) lands: ``build``, ``export`` and ``load_exported`` are
to call ``model.build_controlnet`` / ``save_checkpoint`` / ``load_checkpoint``.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from preprocessors import HINT_CHANNELS, HINT_FORMAT, HINT_VERSION

EXPORT_DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}


def build(unet, config):
    """A 5-channel ControlNetModel copied from ``unet`` (or read from ``config.controlnet_init``)."""
    from diffusers import ControlNetModel

    if config.controlnet_init:
        return load_exported(config.controlnet_init)[0]
    return ControlNetModel.from_unet(unet, conditioning_channels=HINT_CHANNELS)


def residuals(controlnet, noisy, timesteps, text, hint, middle_block_only: bool):
    """The ControlNet's UNet residuals: (down list or None, mid), in the ControlNet's compute dtype."""
    down, mid = controlnet(noisy, timesteps, encoder_hidden_states=text, controlnet_cond=hint, return_dict=False)
    return (None if middle_block_only else down), mid


def export(controlnet, path, layout: str, dtype: str, metadata: dict) -> Path:
    """Write ``controlnet`` as one .safetensors file (atomic), with the hint contract in its metadata."""
    from safetensors.torch import save_file

    path = Path(path)
    state = {k: v.detach().to("cpu", EXPORT_DTYPES[dtype]).contiguous() for k, v in controlnet.state_dict().items()}
    info = {"hint_format": HINT_FORMAT, "hint_version": str(HINT_VERSION), "layout": layout,
            "config": json.dumps(dict(controlnet.config)), **{k: str(v) for k, v in metadata.items()}}
    partial = path.with_name(path.name + ".part")
    save_file(state, str(partial), metadata=info)
    os.replace(partial, path)
    return path


def load_exported(path):
    """(ControlNetModel, metadata dict) read back from an exported file."""
    from diffusers import ControlNetModel
    from safetensors import safe_open
    from safetensors.torch import load_file

    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata() or {}
    model = ControlNetModel.from_config(json.loads(metadata["config"]))
    model.load_state_dict(load_file(str(path)))
    return model, metadata

"""Making the 5-channel ControlNet: from a base UNet, by widening a 3-channel ControlNet, and the
"middle block only" training mode.

Middle block only (the ControlNet paper's small-scale mode): the residuals into the UNet's down-block
skip connections are switched off and only the middle-block residual is added, which trains about 1.6x
faster. It is a flag on the model (``set_middle_block_only``), read by ``controlnet_residuals`` and
recorded in saved checkpoints; switch it off again to train the full model. While it is on, the
down-block zero convolutions (``controlnet_down_blocks``) get no gradient (``.grad`` stays None, so
optimisers skip them) and stay zero-initialised, so hosts that add every residual give the same result.
"""
from __future__ import annotations

import torch

from ._contract import HINT_CHANNELS
from .errors import CheckpointError

_MIDDLE_ONLY_ATTRIBUTE = "colorstroke_middle_block_only"
# The parts of a diffusers ControlNetModel that are not copied from the UNet: the hint encoder, the zero
# convolutions after each down block, and the middle block's zero convolution.
NEW_PARTS = ("controlnet_cond_embedding.", "controlnet_down_blocks.", "controlnet_mid_block.")


def build_controlnet(unet, hint_channels: int = HINT_CHANNELS,
                     conditioning_embedding_out_channels: tuple[int, ...] = (16, 32, 96, 256),
                     middle_block_only: bool = False):
    """A ControlNetModel copied from a diffusers ``UNet2DConditionModel`` (encoder + middle block weights).

    The hint embedding is new (random) and every output convolution is zero-initialised, as in diffusers'
    ``ControlNetModel.from_unet``, so the untrained ControlNet adds exactly zero to the UNet.
    """
    from diffusers import ControlNetModel

    controlnet = ControlNetModel.from_unet(
        unet, conditioning_channels=hint_channels,
        conditioning_embedding_out_channels=tuple(conditioning_embedding_out_channels),
    )
    set_middle_block_only(controlnet, middle_block_only)
    return controlnet


def widen_controlnet(controlnet, hint_channels: int = HINT_CHANNELS):
    """A ``hint_channels`` ControlNet that starts from a 3-channel (RGB hint) one, e.g. a Canny ControlNet.

    Every weight is copied. In the first hint convolution the edge channel (0) gets the sum of the three
    RGB filters and the stroke channels start at zero, so with empty strokes the widened model gives
    exactly the 3-channel model's residuals for the edge map copied into R, G and B. The edge channel is
    white on black, as Canny ControlNets are trained.
    """
    from diffusers import ControlNetModel

    old = controlnet.controlnet_cond_embedding.conv_in
    if old.in_channels != 3:
        raise CheckpointError("widen_controlnet takes a 3-channel ControlNet, "
                              f"this one takes {old.in_channels} channels")
    wide = ControlNetModel.from_config({**dict(controlnet.config), "conditioning_channels": hint_channels})
    state = controlnet.state_dict()
    weight = state["controlnet_cond_embedding.conv_in.weight"]
    widened = torch.zeros(weight.shape[0], hint_channels, *weight.shape[2:], dtype=weight.dtype)
    widened[:, 0] = weight.sum(dim=1)
    state["controlnet_cond_embedding.conv_in.weight"] = widened
    wide.load_state_dict(state, strict=True)
    wide.to(device=weight.device, dtype=weight.dtype)
    set_middle_block_only(wide, middle_block_only(controlnet))
    return wide


def set_middle_block_only(controlnet, enabled: bool = True):
    """Switch the middle-block-only mode on or off (see the module docstring); returns the model."""
    setattr(controlnet, _MIDDLE_ONLY_ATTRIBUTE, bool(enabled))
    return controlnet


def middle_block_only(controlnet) -> bool:
    """Whether ``controlnet`` is in middle-block-only mode."""
    return bool(getattr(controlnet, _MIDDLE_ONLY_ATTRIBUTE, False))


def controlnet_residuals(controlnet, sample, timestep, encoder_hidden_states, hint, scale: float = 1.0,
                         middle_only: bool | None = None, added_cond_kwargs: dict | None = None):
    """The residuals to add to the UNet: (list of down-block residuals, middle residual).

    sample: Bx4xhxw latents; timestep: scalar or B; encoder_hidden_states: BxTxD text embeddings;
    hint: Bx5xHxW in [0, 1] with H, W = 8h, 8w. ``middle_only``: the middle-block-only mode; None reads the
    model's flag (pass it when ``controlnet`` is a wrapper that does not carry the flag, e.g. DDP).
    added_cond_kwargs: SDXL's ``{"text_embeds": BxP pooled text, "time_ids": Bx6 size ids}``; None for SD 1.5.

    In middle-block-only mode the down residuals are zeros outside the autograd graph, so the down-block
    zero convolutions get no gradient. They are zeros and not None because diffusers'
    ``UNet2DConditionModel`` adds ``mid_block_additional_residual`` only when
    ``down_block_additional_residuals`` is given too: None would silently drop the middle residual.
    """
    down, mid = controlnet(sample, timestep, encoder_hidden_states=encoder_hidden_states, controlnet_cond=hint,
                           conditioning_scale=scale, added_cond_kwargs=added_cond_kwargs, return_dict=False)
    if middle_only is None:
        middle_only = middle_block_only(controlnet)
    return ([torch.zeros_like(d) for d in down] if middle_only else list(down)), mid

"""Multiplying a line drawing over a generated image (host-free: torch)."""
from __future__ import annotations

import torch

from ..preprocessors import HintError


def line_layer(lineart, invert: bool = False):
    """IMAGE BxHxWxC (C = 1, 3, or 4 with alpha composited onto white) -> BxHxWx3 float, lines dark on white."""
    if lineart.ndim != 4 or lineart.shape[-1] not in (1, 3, 4):
        raise HintError(f"lineart must be an IMAGE batch BxHxWxC with C in 1, 3, 4; got shape {tuple(lineart.shape)}")
    lines = lineart.float().clamp(0.0, 1.0)
    if lines.shape[-1] == 4:
        alpha = lines[..., 3:]
        lines = lines[..., :3] * alpha + (1.0 - alpha)
    lines = lines.expand(*lines.shape[:-1], 3) if lines.shape[-1] == 1 else lines
    return 1.0 - lines if invert else lines


def multiply_lines(image, lines, opacity: float):
    """image BxHxWx3 in [0, 1] times the line layer at ``opacity``: image * (1 - opacity * (1 - lines)).

    lines: BlxHxWx3 at the image's size, Bl = 1 or B. opacity in [0, 1]; 0 returns the image unchanged.
    """
    if not 0.0 <= opacity <= 1.0:
        raise HintError(f"opacity must lie in [0, 1], got {opacity}")
    if lines.shape[1:3] != image.shape[1:3]:
        raise HintError(f"the line layer is {tuple(lines.shape[1:3])} but the image is {tuple(image.shape[1:3])}")
    if lines.shape[0] not in (1, image.shape[0]):
        raise HintError(f"{lines.shape[0]} drawings for {image.shape[0]} images; give 1 drawing or one per image")
    factor = torch.lerp(torch.ones((), dtype=lines.dtype), lines.to(image.device), float(opacity))
    return image * factor.to(image.dtype)

"""Fitting a hint to the generation's size with the ControlNet hosts' three resize modes.

Both hosts place a control map the same way (sd-webui-controlnet's ``detectmap_proc``, Forge's
``crop_and_resize_image``); ``fit_hint`` reproduces that placement exactly, but resizes each part of
the 5-channel hint by the contract's rules (``preprocessors.resize_hint``) instead of the hosts'
colour-image filters, and fills the margins of "Resize and Fill" with "no edge, no stroke".
"""
from __future__ import annotations

import numpy as np

from preprocessors import HINT_CHANNELS, HintError, resize_hint

JUST_RESIZE = "Just Resize"
CROP_AND_RESIZE = "Crop and Resize"
RESIZE_AND_FILL = "Resize and Fill"
RESIZE_MODES = (JUST_RESIZE, CROP_AND_RESIZE, RESIZE_AND_FILL)
# the hosts' older names, and A1111's img2img resize_mode integers (3 = "Just Resize (latent upscale)")
_ALIASES = {
    "Inner Fit (Scale to Fit)": CROP_AND_RESIZE,
    "Scale to Fit (Inner Fit)": CROP_AND_RESIZE,
    "Outer Fit (Shrink to Fit)": RESIZE_AND_FILL,
    "Envelope (Outer Fit)": RESIZE_AND_FILL,
}
_BY_INT = {0: JUST_RESIZE, 1: CROP_AND_RESIZE, 2: RESIZE_AND_FILL, 3: JUST_RESIZE}


def resize_mode_name(mode) -> str:
    """One of ``RESIZE_MODES`` for a host's ResizeMode enum member, its value or alias, or an integer."""
    value = getattr(mode, "value", mode)
    if isinstance(value, str):
        value = _ALIASES.get(value, value)
        if value in RESIZE_MODES:
            return value
    elif isinstance(value, (int, np.integer)) and int(value) in _BY_INT:
        return _BY_INT[int(value)]
    raise HintError(f"unknown resize mode {mode!r}; expected one of {', '.join(RESIZE_MODES)} or 0-3")


def empty_hint(height: int, width: int) -> np.ndarray:
    """5 x height x width float32: no edge and no stroke anywhere."""
    return np.zeros((HINT_CHANNELS, height, width), dtype=np.float32)


def fit_hint(hint: np.ndarray, mode, height: int, width: int) -> np.ndarray:
    """5xHxW hint -> 5 x height x width, placed as the hosts place control maps.

    "Just Resize" stretches to the target. "Crop and Resize" scales by the larger ratio, to
    (round(H*k), round(W*k)), and keeps the centre. "Resize and Fill" scales by the smaller ratio and
    centres the result on an empty hint. Offsets are the hosts' ``(new - target) // 2``.
    """
    mode = resize_mode_name(mode)
    hint = np.asarray(hint, dtype=np.float32)
    if hint.ndim != 3 or hint.shape[0] != HINT_CHANNELS:
        raise HintError(f"fit_hint takes a 5xHxW hint, got shape {hint.shape}")
    if height < 1 or width < 1:
        raise HintError(f"cannot fit a hint into {width}x{height} pixels")
    if mode == JUST_RESIZE:
        return resize_hint(hint, (height, width))
    old_height, old_width = hint.shape[1:]
    ratios = (height / old_height, width / old_width)
    scale = max(ratios) if mode == CROP_AND_RESIZE else min(ratios)
    # the hosts' int(np.round(x)); at least one pixel so that extreme aspect ratios still fit
    new_height, new_width = max(1, int(np.round(old_height * scale))), max(1, int(np.round(old_width * scale)))
    scaled = resize_hint(hint, (new_height, new_width))
    if mode == CROP_AND_RESIZE:
        top, left = max(0, (new_height - height) // 2), max(0, (new_width - width) // 2)
        return np.ascontiguousarray(scaled[:, top : top + height, left : left + width])
    top, left = max(0, (height - new_height) // 2), max(0, (width - new_width) // 2)
    fitted = empty_hint(height, width)
    fitted[:, top : top + new_height, left : left + new_width] = scaled
    return fitted

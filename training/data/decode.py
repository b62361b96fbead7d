"""Turning whatever a data source yields (bytes, a path, a PIL image) into one RGB training image.

Every image becomes HxWx3 uint8: grey is repeated, CMYK and palettes are converted, 16-bit is
shifted to 8 bit, transparency is composited onto white. What cannot be used raises ``SampleSkipped``
with a short reason that the trainer counts, never a crash.
"""
from __future__ import annotations

import io
import os
import warnings

import numpy as np
from PIL import Image

from preprocessors import HintError
from preprocessors.image_io import composite_on_white, pil_to_array, to_uint8

# Reasons a sample is skipped; the trainer counts each.
UNREADABLE = "unreadable image"
TOO_SMALL = "image too small"
DEAD_LINK = "dead link"
MISSING = "missing file"


class SampleSkipped(Exception):
    """A sample that cannot be trained on; ``reason`` is one of the constants above."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


def open_pil(source) -> Image.Image:
    """Open and fully decode ``source`` (bytes, path or PIL image); SampleSkipped(UNREADABLE/MISSING) if it fails."""
    if isinstance(source, Image.Image):
        return source
    try:
        handle = io.BytesIO(source) if isinstance(source, (bytes, bytearray, memoryview)) else os.fspath(source)
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(handle)
            image.load()
        return image
    except FileNotFoundError:
        raise SampleSkipped(MISSING, str(source)) from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise SampleSkipped(UNREADABLE, str(error)) from None


def decode_rgb(source, min_side: int = 1) -> np.ndarray:
    """``source`` -> HxWx3 uint8 RGB; SampleSkipped if unreadable or its short side is below ``min_side`` px."""
    image = open_pil(source)
    if min(image.size) < min_side:
        raise SampleSkipped(TOO_SMALL, f"{image.size[0]}x{image.size[1]} < {min_side} px on the short side")
    try:
        pixels = composite_on_white(to_uint8(pil_to_array(image)))
    except HintError as error:
        raise SampleSkipped(UNREADABLE, str(error)) from None
    if pixels.shape[2] == 1:
        pixels = np.repeat(pixels, 3, axis=2)
    return np.ascontiguousarray(pixels)

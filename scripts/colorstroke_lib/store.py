"""The colour-stroke layer of the generation in progress.

The "Color Stroke" script section sets it before ControlNet reads its units and clears it when the
generation ends; our preprocessors read it while it runs. The hosts run one generation at a time.
"""
from __future__ import annotations

import base64
import binascii
import io

import numpy as np
from PIL import Image, UnidentifiedImageError

from preprocessors import HintError


def decode_strokes(value) -> np.ndarray | None:
    """A stroke layer as the UI or the API gives it -> HxWx4 uint8 straight RGBA, or None if none.

    value: None or "" (no layer); a numpy HxWx4 array (gradio's RGBA image, uint8); a PIL image with
    transparency; or a base64 PNG string, optionally a ``data:image/png;base64,`` URL (API calls).
    Alpha 0 means "no stroke". A layer without alpha raises HintError: it cannot tell strokes apart.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, str):
        payload = value.split(",", 1)[1] if value.lstrip().startswith("data:") else value
        try:
            value = Image.open(io.BytesIO(base64.b64decode(payload, validate=False)))
            value.load()
        except (binascii.Error, UnidentifiedImageError, OSError, ValueError) as error:
            raise HintError(f"the stroke layer is not a base64-encoded image: {error}") from error
    if isinstance(value, Image.Image):
        if "A" not in value.getbands() and "transparency" not in value.info:
            raise HintError(
                f"the stroke layer is a {value.mode} image without transparency; send an RGBA PNG whose "
                "transparent pixels mean 'no stroke'"
            )
        value = np.asarray(value.convert("RGBA"))
    layer = np.asarray(value)
    if layer.ndim != 3 or layer.shape[2] != 4:
        raise HintError(f"the stroke layer must be HxWx4 RGBA, got shape {layer.shape}")
    return layer


def has_strokes(layer: np.ndarray | None) -> bool:
    """True when ``layer`` (HxWx4) has any pixel with alpha above 0."""
    return layer is not None and bool(layer[..., 3].any())


class StrokeStore:
    """Holds one stroke layer (HxWx4 straight RGBA, uint8 or float in [0, 1]) or None."""

    def __init__(self):
        self._layer = None

    def set(self, *values) -> np.ndarray | None:
        """Keep the first of ``values`` (as ``decode_strokes`` reads them) that has strokes; None if none.

        Returns the kept layer. Raises HintError, keeping nothing, if a value cannot be read.
        """
        self._layer = None
        layers = [decode_strokes(value) for value in values]
        self._layer = next((layer for layer in layers if has_strokes(layer)), None)
        return self._layer

    def get(self) -> np.ndarray | None:
        return self._layer

    def clear(self) -> None:
        self._layer = None


STROKES = StrokeStore()

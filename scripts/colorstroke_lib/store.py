"""The colour-stroke layer of the generation in progress, and how a stroke layer is read.

The "Color Stroke" script section sets it before ControlNet reads its units and clears it when the
generation ends; our preprocessors read it while it runs. The hosts run one generation at a time.

A stroke layer must tell strokes from "no stroke". It is read as follows:

- with transparency (an RGBA PNG, Forge's canvas paint): alpha 0 means no stroke;
- fully opaque (an RGB PNG or JPEG, which gradio's RGBA upload turns into alpha 255 everywhere): strokes
  painted on a plain background, such as a white canvas exported flat. The border's most common colour
  is that background when at least ``PLAIN_BORDER_SHARE`` of the outermost pixels lie within
  ``BACKGROUND_TOLERANCE`` of it; pixels near it mean no stroke, all others are strokes (the background
  mode of ``preprocessors.user_strokes``). Taking the whole picture as one stroke, as before, would
  paint the canvas colour over the whole image, which nobody who uploads strokes on white wants;
- an opaque layer without such a background (a photo, a fully coloured picture) cannot say where the
  strokes are: HintError, and the generation stops with it rather than run without the strokes given.
"""
from __future__ import annotations

import base64
import binascii
import io
from dataclasses import dataclass

import numpy as np
from PIL import Image, UnidentifiedImageError

from preprocessors import HintError, user_strokes
from preprocessors.image_io import to_uint8

# largest per-channel difference (fraction of full scale) to the background colour still read as background:
# wide enough for JPEG noise around strokes, narrow enough that pale stroke colours stay strokes
BACKGROUND_TOLERANCE = 0.1
PLAIN_BORDER_SHARE = 0.5  # share of the border pixels that must be the background colour


@dataclass(frozen=True)
class StrokeLayer:
    """A readable stroke layer.

    pixels: HxWx4 straight RGBA, uint8 or float32 in [0, 1]; alpha 0 = no stroke.
    background: for an opaque layer, the 0-255 RGB colour read as "no stroke"; None when alpha said it.
    """

    pixels: np.ndarray
    background: tuple[int, int, int] | None = None

    @property
    def painted(self) -> float:
        """Share of the pixels that are strokes (alpha above 0)."""
        return float(np.count_nonzero(self.pixels[..., 3])) / max(1, self.pixels[..., 3].size)


def _open_base64(text: str) -> Image.Image:
    payload = text.split(",", 1)[1] if text.lstrip().startswith("data:") else text
    try:
        image = Image.open(io.BytesIO(base64.b64decode(payload, validate=False)))
        image.load()
    except (binascii.Error, UnidentifiedImageError, OSError, ValueError) as error:
        raise HintError(f"the stroke layer is not a base64-encoded image: {error}") from error
    return image


def decode_image(value) -> np.ndarray | None:
    """A stroke layer as the UI or the API gives it -> HxWx4 (RGBA) or HxWx3 (RGB) array, or None if none.

    value: None or "" (no layer); a numpy HxWx4/HxWx3 array (gradio's image, uint8); a PIL image; or a
    base64 image string, optionally a ``data:image/png;base64,`` URL (API calls). HintError otherwise.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, str):
        value = _open_base64(value)
    if isinstance(value, Image.Image):
        transparent = "A" in value.getbands() or "transparency" in value.info
        value = np.asarray(value.convert("RGBA" if transparent else "RGB"))
    layer = np.asarray(value)
    if layer.ndim != 3 or layer.shape[2] not in (3, 4):
        raise HintError(f"the stroke layer must be an HxWx4 RGBA (or HxWx3 RGB) image, got shape {layer.shape}")
    return layer


def is_opaque(layer: np.ndarray) -> bool:
    """True when the layer's alpha cannot tell strokes apart: no alpha, or the same non-zero alpha everywhere."""
    if layer.shape[2] == 3:
        return True
    alpha = layer[..., 3]
    return bool(alpha.max() > 0 and alpha.min() == alpha.max())


def plain_background(rgb: np.ndarray) -> tuple[int, int, int] | None:
    """The most common colour (0-255 RGB) of the outermost pixels of ``rgb`` (HxWx3 uint8), if at least
    ``PLAIN_BORDER_SHARE`` of them lie within ``BACKGROUND_TOLERANCE`` of it; else None."""
    border = np.concatenate([rgb[0], rgb[-1], rgb[1:-1, 0], rgb[1:-1, -1]]).astype(np.int16)
    colours, counts = np.unique(border, axis=0, return_counts=True)
    colour = colours[counts.argmax()]
    near = np.abs(border - colour).max(axis=1) <= BACKGROUND_TOLERANCE * 255
    return tuple(int(c) for c in colour) if near.mean() >= PLAIN_BORDER_SHARE else None


def read_layer(value) -> StrokeLayer | None:
    """The stroke layer in ``value`` (as ``decode_image`` takes it), read as the module says; None if none.

    Raises HintError when the value is not an image, or is opaque without a plain background.
    """
    layer = decode_image(value)
    if layer is None:
        return None
    if not is_opaque(layer):
        return StrokeLayer(layer)
    rgb = to_uint8(layer[..., :3], "stroke layer")
    colour = plain_background(rgb)
    if colour is None:
        raise HintError(
            "the stroke layer has no transparent pixels and no plain background colour around its border, so "
            "strokes cannot be told from the rest: send a PNG whose transparent pixels mean 'no stroke', or "
            "strokes painted on a plain (e.g. white) background"
        )
    pixels = user_strokes(rgb, background=np.array(colour, np.float32) / 255.0, tolerance=BACKGROUND_TOLERANCE)
    return StrokeLayer(pixels, colour)


def describe(value) -> str:
    """One Markdown line for the UI on how the layer in ``value`` is read, or why it cannot be used; never raises."""
    try:
        layer = read_layer(value)
    except HintError as error:
        return (f"**This stroke layer cannot be used:** {error}. Generating stops with this message until you "
                "replace or clear it.")
    if layer is None:
        return ""
    if not layer.painted:
        return "The stroke layer is fully transparent: no strokes."
    height, width = layer.pixels.shape[:2]
    fitting = (f" It is {width}x{height}: a drawing of another size gets it scaled, of another aspect stretched "
               "(the generation info then says so).")
    if layer.background is None:
        return f"Stroke layer: {layer.painted:.0%} of it painted, transparent elsewhere.{fitting}"
    colour = "#{:02x}{:02x}{:02x}".format(*layer.background)
    return (f"Stroke layer without transparency: its plain background ({colour}) counts as no stroke, "
            f"the rest ({layer.painted:.0%}) as strokes.{fitting}")


class StrokeStore:
    """Holds the stroke layer of the generation in progress, or None."""

    def __init__(self):
        self._layer = None

    def set(self, *values) -> StrokeLayer | None:
        """Keep the first of ``values`` (as ``read_layer`` reads them) that has strokes; None if none.

        Returns the kept layer. Raises HintError, keeping nothing, if a value cannot be used.
        """
        self._layer = None
        layers = [read_layer(value) for value in values]
        self._layer = next((layer for layer in layers if layer is not None and layer.painted), None)
        return self._layer

    def get(self) -> np.ndarray | None:
        """The kept layer's HxWx4 straight RGBA pixels, or None."""
        return None if self._layer is None else self._layer.pixels

    def clear(self) -> None:
        self._layer = None


STROKES = StrokeStore()

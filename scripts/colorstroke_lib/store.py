"""The colour-stroke layer of the generation in progress, and how the WebUIs' stroke input is decoded.

The "Color Stroke" script section sets it before ControlNet reads its units and clears it when the
generation ends; our preprocessors read it while it runs. The hosts run one generation at a time.

A stroke layer comes as gradio's image, a PIL image or a base64 PNG/JPEG (the API); ``decode_image`` turns it
into an array and ``preprocessors.read_stroke_layer`` reads it by the rules ComfyUI shares, with no
background colour given:

- with transparency (an RGBA PNG, Forge's canvas paint): alpha 0 means no stroke;
- fully opaque (an RGB PNG or JPEG, which gradio's RGBA upload turns into alpha 255 everywhere): strokes
  painted on a plain background, such as a white canvas exported flat, which the border's most common colour
  gives. Taking the whole picture as one stroke would paint the canvas colour over the whole image, which
  nobody who uploads strokes on white wants;
- an opaque layer without such a background (a photo, a fully coloured picture), or strokes over most of the
  picture, cannot say where the strokes are: ``StrokeMisread``, and the generation stops with it rather than
  run without the strokes given. So does a layer that is the drawing itself or lies on its lines, once a
  unit's drawing is known (``hints.build_hint``).
"""
from __future__ import annotations

import base64
import binascii
import io

import numpy as np
from PIL import Image, UnidentifiedImageError

from preprocessors import HintError, StrokeReading, read_stroke_layer
from preprocessors.stroke_layer import hex_colour


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


def read_layer(value) -> StrokeReading | None:
    """The stroke layer in ``value`` (as ``decode_image`` takes it), read as the module says; None if none.

    Raises HintError when the value is not an image, or cannot say where the strokes are.
    """
    layer = decode_image(value)
    return None if layer is None else read_stroke_layer(layer)


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
    height, width = layer.layer.shape[:2]
    fitting = (f" It is {width}x{height}: a drawing of another size gets it scaled, of another aspect stretched "
               "(the generation info then says so).")
    if layer.background is None:
        return f"Stroke layer: {layer.painted:.0%} of it painted, transparent elsewhere.{fitting}"
    return (f"Stroke layer without transparency: its plain background ({hex_colour(layer.background)}) counts as no "
            f"stroke, the rest ({layer.painted:.0%}) as strokes.{fitting}")


class StrokeStore:
    """Holds the stroke layer of the generation in progress, or None."""

    def __init__(self):
        self._layer = None

    def set(self, *values) -> StrokeReading | None:
        """Keep the first of ``values`` (as ``read_layer`` reads them) that has strokes; None if none.

        Returns the kept layer. Raises HintError, keeping nothing, if a value cannot be used.
        """
        self._layer = None
        layers = [read_layer(value) for value in values]
        self._layer = next((layer for layer in layers if layer is not None and layer.painted), None)
        return self._layer

    def get(self) -> StrokeReading | None:
        """The kept layer, as ``preprocessors.read_stroke_layer`` read it, or None."""
        return self._layer

    def clear(self) -> None:
        self._layer = None


STROKES = StrokeStore()

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

The section's options (fill between the lines, the gap it closes; on Forge, stroke guidance) come with the layer
and hold for every unit of the generation (``fill_options``, ``guidance_option``).
"""
from __future__ import annotations

import base64
import binascii
import io

import numpy as np
from PIL import Image, UnidentifiedImageError

from preprocessors import MAX_FILL_GAP, HintError, StrokeReading, read_stroke_layer
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


# the section's inputs in API order (its ``alwayson_scripts`` args)
ARGS = (f"[stroke layer, fill (true/false), fill gap (0-{MAX_FILL_GAP} pixels)], on Forge then stroke guidance "
        "(true/false) and its canvas layer")


def _shown(value) -> str:
    """A value given where an option goes, as a message shows it: its repr, cut short (an image's base64 is long)."""
    text = repr(value)
    return text if len(text) <= 40 else text[:40] + "..."


def fill_options(fill, fill_gap) -> tuple[bool, int]:
    """(fill, gap) from the section's checkbox and slider, or an API call's args; None takes the default (fill
    on, gap 0 = in proportion to the drawing). Raises HintError naming the args' order for anything else."""
    fill = True if fill is None else fill
    fill_gap = 0 if fill_gap is None else fill_gap
    if not isinstance(fill, bool):
        raise HintError(f"the section's args are {ARGS}: the fill must be true or false, got {_shown(fill)}")
    if isinstance(fill_gap, bool) or not isinstance(fill_gap, (int, float)) or fill_gap != int(fill_gap) \
            or not 0 <= fill_gap <= MAX_FILL_GAP:
        raise HintError(f"the section's args are {ARGS}: the fill gap must be a whole number of pixels from 0 to "
                        f"{MAX_FILL_GAP}, got {_shown(fill_gap)}")
    return fill, int(fill_gap)


def guidance_option(stroke_guidance) -> bool:
    """Stroke guidance from the section's checkbox (Forge) or an API call's args; None (A1111, or not given) is off.
    Raises HintError naming the args' order for anything but true or false."""
    if stroke_guidance is None:
        return False
    if not isinstance(stroke_guidance, bool):
        raise HintError(f"the section's args are {ARGS}: stroke guidance must be true or false, got "
                        f"{_shown(stroke_guidance)}")
    return stroke_guidance


class StrokeStore:
    """Holds the stroke layer of the generation in progress (or None) and its options."""

    def __init__(self):
        self.clear()

    def set(self, layer=None, fill=True, fill_gap=0, stroke_guidance=None, *more_layers) -> StrokeReading | None:
        """Keep the first of the layers (``layer``, then ``more_layers``: Forge's canvas; as ``read_layer`` reads
        them) that has strokes, None if none, the fill options (``fill_options``) and stroke guidance
        (``guidance_option``).

        Returns the kept layer. Raises HintError, keeping nothing, if a value cannot be used.
        """
        self.clear()
        options = fill_options(fill, fill_gap)
        guided = guidance_option(stroke_guidance)
        layers = [read_layer(value) for value in (layer, *more_layers)]
        self._layer = next((layer for layer in layers if layer is not None and layer.painted), None)
        (self.fill, self.fill_gap), self.stroke_guidance = options, guided
        return self._layer

    def get(self) -> StrokeReading | None:
        """The kept layer, as ``preprocessors.read_stroke_layer`` read it, or None."""
        return self._layer

    @property
    def guided(self) -> bool:
        """Whether this generation's Color Stroke units use stroke guidance (asked for, and strokes to guide by)."""
        return self.stroke_guidance and self._layer is not None

    @property
    def filled(self) -> bool:
        """Whether the hints of this generation fill its strokes between the lines (fill on, and strokes)."""
        return self.fill and self._layer is not None

    def clear(self) -> None:
        self._layer = None
        self.fill, self.fill_gap = fill_options(None, None)
        self.stroke_guidance = guidance_option(None)


STROKES = StrokeStore()

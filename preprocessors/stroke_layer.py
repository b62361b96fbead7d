"""Reading the stroke picture a person gives a host into a stroke layer: one set of rules for every host.

A stroke picture must say where the strokes are. ``read_stroke_layer`` reads it by the first of these that
applies:

1. a ``mask`` (HxW in [0, 1], 1 = stroke), when the host has one for the picture (ComfyUI's strokes_mask);
2. the picture's alpha, when it tells strokes apart (not one value everywhere): alpha 0 = no stroke;
3. an opaque picture (RGB, or one alpha everywhere, as gradio makes of an RGB upload) holds strokes painted
   on a plain background. The background is the host's ``background`` when it gives one (ComfyUI's colour
   widget), else the border's most common colour when at least ``PLAIN_BORDER_SHARE`` of the outermost
   pixels lie within ``BACKGROUND_TOLERANCE`` of it. A given colour that a plain border is near is measured
   on that border, so a JPEG or off-white paper reads the same with the colour given as without. Pixels within
   ``BACKGROUND_TOLERANCE`` of the background (per channel, a fraction of full scale: wide enough for JPEG
   noise around strokes, narrow enough that pale strokes stay strokes) are no stroke, all others strokes.

What would be misread raises ``StrokeMisread`` (a ``HintError``) whose ``reason`` lets a host word its own
remedy: "no_background" (an opaque picture without a background given or found), "most_of_the_picture"
(strokes over more than ``MOST_OF_THE_PICTURE`` of it: painted strokes leave most of a picture bare, so
this is a mask the wrong way round or an opaque picture read by a colour it lacks), and, from
``check_not_the_drawing`` and ``check_off_the_lines`` once the drawing is known, "the_drawing" (the picture
is the drawing itself) and "on_the_lines" (strokes lying on the drawing's lines: its own mask or alpha; people
paint regions, not lines). What the person should know without stopping is in ``StrokeReading.warnings``;
each host shows it its own way.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .contract import HintError
from .image_io import as_channels_last, integer_scale
from .strokes import user_strokes

BACKGROUND_TOLERANCE = 0.1
PLAIN_BORDER_SHARE = 0.5  # share of the border pixels that must lie near its most common colour
MOST_OF_THE_PICTURE = 0.9  # strokes (A > 0.5) over more of the picture than this are a misread
ON_THE_LINES = 0.9  # strokes this much within 2 pixels of the drawing's edges are its own mask or alpha ...
ON_LINES_MIN_COVERAGE = 0.005  # ... checked when they cover at least this share of the picture
READ_FROM = ("mask", "alpha", "background")
_SAME_PICTURE = 1.5 / 255.0  # largest RGB difference of two pictures that are one (rounding to 8 bits)


class StrokeMisread(HintError):
    """A stroke picture that would be misread. reason: "no_background", "most_of_the_picture", "the_drawing"
    or "on_the_lines" (see the module); share: the share of the picture (most_of_the_picture) or of the strokes
    (on_the_lines) that tripped it; read_from: how the strokes were read (``READ_FROM``), None if they were not."""

    def __init__(self, message: str, reason: str, share: float | None = None, read_from: str | None = None):
        super().__init__(message)
        self.reason, self.share, self.read_from = reason, share, read_from


@dataclass(frozen=True)
class StrokeReading:
    """A stroke picture read into a stroke layer.

    picture: the picture as given, HxWxC (C in 1, 3, 4), its own dtype (``check_not_the_drawing`` takes it).
    layer: HxWx4 float32 premultiplied RGBA in [0, 1] at the picture's size (``contract``'s stroke layer).
    read_from: "mask", "alpha" or "background" (``READ_FROM``).
    background: the 0-255 RGB colour read as no stroke when read_from is "background", else None.
    painted: the share of the pixels with any stroke (A > 0), in [0, 1].
    warnings: what the person should know about the reading, one sentence each.
    """

    picture: np.ndarray
    layer: np.ndarray
    read_from: str
    background: tuple[int, int, int] | None
    painted: float
    warnings: tuple[str, ...] = ()


def hex_colour(colour) -> str:
    """A 0-255 RGB colour as #rrggbb."""
    return "#{:02x}{:02x}{:02x}".format(*(int(c) for c in colour))


def is_opaque(pixels: np.ndarray) -> bool:
    """True when the alpha of ``pixels`` (HxWxC) cannot tell strokes apart: no alpha, or one non-zero value."""
    if pixels.shape[2] != 4:
        return True
    alpha = pixels[..., 3]
    return bool(alpha.max() > 0 and alpha.min() == alpha.max())


def plain_border(pixels: np.ndarray, tolerance: float = BACKGROUND_TOLERANCE) -> tuple[int, int, int] | None:
    """The most common colour (0-255 RGB) of the outermost pixels of ``pixels`` (HxWxC, any dtype), if at least
    ``PLAIN_BORDER_SHARE`` of them lie within ``tolerance`` (a fraction of full scale) of it; else None."""
    rgb = pixels[..., :3] if pixels.shape[2] >= 3 else np.repeat(pixels[..., :1], 3, axis=2)
    border = np.concatenate([rgb[0], rgb[-1], rgb[1:-1, 0], rgb[1:-1, -1]]).astype(np.float32)
    border = np.round(border * (255.0 / integer_scale(pixels.dtype))).astype(np.int16)
    colours, counts = np.unique(border, axis=0, return_counts=True)
    colour = colours[counts.argmax()]
    near = np.abs(border - colour).max(axis=1) <= tolerance * 255
    return tuple(int(c) for c in colour) if near.mean() >= PLAIN_BORDER_SHARE else None


def _given_colour(background) -> np.ndarray:
    try:
        colour = np.asarray(background, dtype=np.float32).reshape(-1)
    except (TypeError, ValueError):
        colour = np.array([np.nan])
    if colour.size != 3 or not np.isfinite(colour).all() or colour.min() < 0 or colour.max() > 1:
        raise HintError(f"background must be an RGB colour (r, g, b) in [0, 1], got {background!r}")
    return colour


def _background(pixels: np.ndarray, background, tolerance: float) -> tuple[np.ndarray, tuple[int, int, int]]:
    """(colour in [0, 1] as float32, the same as 0-255 RGB) of an opaque picture, as the module says."""
    border = plain_border(pixels, tolerance)
    if background is not None:
        given = _given_colour(background)
        if border is None or np.abs(np.array(border) / 255.0 - given).max() > tolerance:
            return given, tuple(int(c) for c in np.round(given * 255.0))
    elif border is None:
        raise StrokeMisread(
            "the stroke layer has no transparent pixels and no plain background colour around its border, so "
            "strokes cannot be told from the rest: send a PNG whose transparent pixels mean 'no stroke', or "
            "strokes painted on a plain (e.g. white) background", "no_background")
    return np.array(border, np.float32) / 255.0, border


def _covers_most(share: float, read_from: str, background) -> StrokeMisread:
    said = f"{share:.0%} of the picture"
    if read_from == "mask":
        text = (f"the stroke mask marks {said} as strokes, so they would hide the drawing: give a mask that is 1 "
                "only where strokes are painted")
    elif read_from == "alpha":
        text = (f"the stroke layer is opaque over {said}, so the strokes would hide the drawing; a stroke layer is "
                "transparent wherever nothing is painted")
    else:
        text = (f"{said} of the stroke layer differs from its background {hex_colour(background)}, so the strokes "
                "would hide the drawing: give a transparent PNG, or strokes on a plain background that leave most "
                "of it bare")
    return StrokeMisread(text, "most_of_the_picture", share, read_from)


def read_stroke_layer(picture, mask=None, background=None, tolerance: float = BACKGROUND_TOLERANCE) -> StrokeReading:
    """Read a stroke picture by the module's rules.

    picture: HxW, HxWx3 or HxWx4 (numpy or PIL), uint8, uint16 or float in [0, 1].
    mask: HxW (or HxWx1) in [0, 1], 1 = stroke, at the picture's size; wins over everything else.
    background: (r, g, b) in [0, 1], the colour of "no stroke" for an opaque picture; None = find it.
    tolerance: the largest per-channel difference (fraction of full scale) to the background that is no stroke.
    Raises StrokeMisread ("no_background", "most_of_the_picture") and HintError for what is not a picture.
    """
    pixels = as_channels_last(picture, "stroke layer")
    colour, warnings = None, ()
    if mask is not None:
        read_from, layer = "mask", user_strokes(pixels, mask=mask)
    elif not is_opaque(pixels):
        read_from, layer = "alpha", user_strokes(pixels)
    else:
        read_from = "background"
        level, colour = _background(pixels, background, tolerance)
        layer = user_strokes(pixels[..., :3], background=level, tolerance=tolerance)
        warnings = (f"the stroke layer has no transparency: its plain background {hex_colour(colour)} counted as "
                    "no stroke",)
    alpha = layer[..., 3]
    covered = np.count_nonzero(alpha > 0.5) / alpha.size
    if covered > MOST_OF_THE_PICTURE:
        raise _covers_most(covered, read_from, colour)
    return StrokeReading(pixels, layer, read_from, colour, np.count_nonzero(alpha) / alpha.size, warnings)


def _rgb(pixels: np.ndarray) -> np.ndarray:
    rgb = pixels[..., :3] if pixels.shape[2] >= 3 else np.repeat(pixels[..., :1], 3, axis=2)
    return rgb.astype(np.float32) / np.float32(integer_scale(pixels.dtype))


def same_picture(first, second) -> bool:
    """Whether two pictures are one: the same size and RGB within 1.5/255 everywhere (grey counts as RGB, alpha
    is left out). A sparse grid is compared first, so two different pictures cost a fraction of a millisecond."""
    if first is second:
        return True
    first, second = as_channels_last(first, "line drawing"), as_channels_last(second, "stroke layer")
    if first.shape[:2] != second.shape[:2]:
        return False
    return all(np.abs(_rgb(first[::step, ::step]) - _rgb(second[::step, ::step])).max() <= _SAME_PICTURE
               for step in (8, 1))


def share_on_the_lines(hint: np.ndarray) -> float:
    """Of the stroke pixels (A > 0.5) of a 5xHxW hint (edges white on black), the share within 2 pixels of an
    edge; 0 when strokes cover less than ``ON_LINES_MIN_COVERAGE`` of the picture."""
    strokes = hint[4] > 0.5
    count = int(np.count_nonzero(strokes))
    if count < ON_LINES_MIN_COVERAGE * strokes.size:
        return 0.0
    near_lines = cv2.dilate((hint[0] > 0.5).view(np.uint8), np.ones((5, 5), np.uint8)) > 0
    return float(np.count_nonzero(strokes & near_lines) / count)


def check_not_the_drawing(picture, drawing) -> None:
    """Raise StrokeMisread ("the_drawing") when the stroke picture (as given, or a ``StrokeReading``'s
    ``picture``) is ``drawing`` itself (the line drawing as the host was given it: HxW, HxWx3 or HxWx4)."""
    if same_picture(drawing, picture):
        raise StrokeMisread("the stroke layer is the line drawing itself: give the colour strokes painted for it (a "
                            "transparent PNG, or strokes on a plain background)", "the_drawing")


def check_off_the_lines(reading: StrokeReading, hint: np.ndarray) -> None:
    """Raise StrokeMisread ("on_the_lines") when the strokes of ``hint`` (the 5xHxW hint built from ``reading``
    and a drawing) lie on the drawing's edges."""
    share = share_on_the_lines(hint)
    if share > ON_THE_LINES:
        raise StrokeMisread(f"{share:.0%} of the strokes lie on the drawing's lines, so this is the drawing's own "
                            "mask or alpha, not a stroke layer: give the layer the colours were painted on",
                            "on_the_lines", share, reading.read_from)

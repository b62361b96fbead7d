"""What both hosts' preprocessors compute: the hint of a drawing plus strokes, its previews, a batch.

All hint building goes through ``preprocessors.inference_hint`` (Canny of the drawing at its own
size, the stroke layer stretched to it) and the misread guards ComfyUI shares (``check_not_the_drawing``,
``check_off_the_lines``); only the placement at the generation's size is ours (``geometry.fit_hint``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from preprocessors import (
    DEFAULT_CANNY,
    WHITE_ON_BLACK,
    StrokeReading,
    check_not_the_drawing,
    check_off_the_lines,
    inference_hint,
)

from .geometry import fit_hint

# our preprocessors in both hosts -> the edge polarity each chooses for a model that records none (None:
# no choice, so black_on_white, the original colour-stroke model's); a recorded polarity wins (``polarity``).
# The first is the default: both hosts preselect the first of a Control Type's preprocessors in descending
# (sorting_priority, name) order, which without ``SORTING_PRIORITY`` would be the white_on_black one
DEFAULT_PREPROCESSOR = "colorstroke_canny"
WHITE_ON_BLACK_PREPROCESSOR = "colorstroke_canny_white_on_black"
PREPROCESSORS = {DEFAULT_PREPROCESSOR: None, WHITE_ON_BLACK_PREPROCESSOR: WHITE_ON_BLACK}
SORTING_PRIORITY = {name: len(PREPROCESSORS) - rank for rank, name in enumerate(PREPROCESSORS)}
# the preprocessors' tag (Control Type). Under it both hosts list only the models whose file name contains
# MODEL_NAME_FILTER (sd-webui-controlnet matches the tag, Forge our ``model_filename_filters``), so a Color
# Stroke model must be named *colorstroke*, e.g. control_colorstroke_sd15.safetensors (the trainer's name)
TAG = "ColorStroke"
MODEL_NAME_FILTER = "colorstroke"


@dataclass(frozen=True)
class Drawing:
    """A line drawing as a host hands it to a preprocessor, with the Canny thresholds of its unit.

    image: HxWx3 (or HxWx4, HxW) uint8 RGB; low <= high: OpenCV Canny thresholds on 0-255 gradients.
    """

    image: np.ndarray
    low: float = DEFAULT_CANNY.low
    high: float = DEFAULT_CANNY.high


@dataclass(frozen=True)
class HintMap:
    """A 5xHxW float32 hint in [0, 1] at the drawing's size (white edges on black, as the library builds it),
    and the edge polarity of the model it is for (``Generation.model_polarity``), into which ``cn_glue.hint_control``
    turns it where sd-webui-controlnet hands it to the model."""

    hint: np.ndarray
    model_polarity: str


def thresholds(slider_1, slider_2) -> tuple[float, float]:
    """The Canny (low, high) from a unit's two sliders; None means the default, swapped if reversed."""
    low = float(DEFAULT_CANNY.low if slider_1 is None else slider_1)
    high = float(DEFAULT_CANNY.high if slider_2 is None else slider_2)
    return min(low, high), max(low, high)


def build_hint(drawing: Drawing, strokes: StrokeReading | None, fill: bool = False, fill_gap: int = 0) -> np.ndarray:
    """The 5xHxW hint of ``drawing`` with ``strokes`` (the stored ``StrokeReading``, any size, or None), filled
    between the drawing's lines first when ``fill`` (closing gaps up to ``fill_gap`` px, 0 = by its size).

    Raises ``preprocessors.StrokeMisread`` when the stroke layer is the drawing itself or lies on its lines.
    """
    if strokes is not None:
        check_not_the_drawing(strokes.picture, drawing.image)
    hint = inference_hint(drawing.image, strokes, low=drawing.low, high=drawing.high, fill=fill, fill_gap=fill_gap)
    if strokes is not None:
        check_off_the_lines(strokes, hint)
    return hint


def canny_preview(hint: np.ndarray) -> np.ndarray:
    """The hint's edges as the hosts show a Canny map: HxWx3 uint8, white lines on black."""
    grey = (np.clip(hint[0], 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=2)


def hint_batch(unit_hints, mode, height: int, width: int, batch_size: int) -> np.ndarray:
    """Bx5xheightxwidth float32: each of a unit's hints (``build_hint``'s, one per drawing) fitted by ``mode``.

    Sample i uses hint i % len(unit_hints), as the hosts align a unit's inputs to the batch.
    """
    if not unit_hints:
        raise ValueError("no drawing was recorded for this ControlNet unit")
    fitted = [fit_hint(hint, mode, height, width) for hint in unit_hints]
    return np.stack([fitted[i % len(fitted)] for i in range(batch_size)])

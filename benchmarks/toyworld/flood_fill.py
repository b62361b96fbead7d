"""The classical reference: fill each closed area of the line drawing with the colour of its strokes."""
from __future__ import annotations

import cv2
import numpy as np


def flood_fill(lineart: np.ndarray, strokes: np.ndarray, paper: int = 255) -> np.ndarray:
    """Colour ``lineart`` (HxWx3 uint8, dark lines on light paper) from ``strokes`` (HxWx4 premultiplied).

    Every 4-connected area between lines takes the median colour of the stroke pixels (A >= 0.5)
    inside it; areas without strokes stay paper-white and the lines stay as drawn. Returns HxWx3 uint8.
    """
    lines = lineart.mean(axis=2) < 128
    count, labels = cv2.connectedComponents((~lines).astype(np.uint8), connectivity=4)
    result = lineart.copy()
    result[~lines] = paper
    on = strokes[..., 3] >= 0.5
    colours = np.clip(strokes[..., :3] / np.maximum(strokes[..., 3:], 1e-6) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    for label in np.unique(labels[on & ~lines]):
        area = labels == label
        result[area] = np.median(colours[area & on], axis=0).astype(np.uint8)
    return result

"""How well a result follows its hint: the scores of validation, the toy world and the benchmarks.

- ``edge_f1``: F1 of two HxW edge maps (1 = edge); an edge pixel of one map counts as matched when the other
  has an edge within ``tolerance`` pixels in city-block distance (0: the same pixel). Validation scores
  Canny of a result against the hint's edges within 2 px, the toy world against Canny of the truth's drawing
  within 1 px (the figures it committed), ``benchmarks.bench_hints`` two Canny variants pixel for pixel.
- ``stroke_colour_error``: mean RGB distance (0-255 units, Euclidean over R, G, B) between a result and the
  stroke colour where the stroke alpha is above 0.5; lower is better.
"""
from __future__ import annotations

import cv2
import numpy as np

_CROSS = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))


def _grow(mask: np.ndarray, pixels: int) -> np.ndarray:
    """``mask`` (HxW bool) grown by ``pixels`` steps to the 4-neighbours (city-block distance <= ``pixels``)."""
    if not pixels:
        return mask
    return cv2.dilate(mask.astype(np.uint8), _CROSS, iterations=pixels, borderValue=0).astype(bool)


def edge_f1(found: np.ndarray, truth: np.ndarray, tolerance: int) -> float:
    """F1 in [0, 1] of the edge map ``found`` against ``truth`` (HxW, edge where > 0.5), matches counted
    within ``tolerance`` pixels; 1 when neither has an edge."""
    found, truth = np.asarray(found) > 0.5, np.asarray(truth) > 0.5
    if not truth.any() and not found.any():
        return 1.0
    precision = (found & _grow(truth, tolerance)).sum() / max(found.sum(), 1)
    recall = (truth & _grow(found, tolerance)).sum() / max(truth.sum(), 1)
    return float(0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall))


def stroke_colour_error(result: np.ndarray, hint: np.ndarray) -> float:
    """Mean RGB distance (0-255) between ``result`` HxWx3 uint8 and the stroke colour of ``hint`` (5xHxW) where
    its alpha > 0.5; NaN when the hint has no stroke pixel."""
    alpha = hint[4]
    on = alpha > 0.5
    if not on.any():
        return float("nan")
    colour = hint[1:4][:, on] / alpha[on]  # un-premultiply: 3 x N in [0, 1]
    got = result[on].T.astype(np.float32) / 255.0
    return float(np.linalg.norm(got - colour, axis=0).mean() * 255.0)

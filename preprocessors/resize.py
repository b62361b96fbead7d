"""Resizing edge maps, stroke layers and hints without losing thin lines or bleeding colour.

Edges (white on black) are downscaled by the maximum over each target pixel's source area, so a
one-pixel line survives any reduction; they are upscaled bilinearly. Stroke layers are
premultiplied, so area (down) and bilinear (up) filtering, whose weights are non-negative, keep
RGB <= A everywhere: no colour appears where A = 0.
"""
from __future__ import annotations

import cv2
import numpy as np

from .contract import EDGE_CHANNEL, HINT_CHANNELS, HintError


def _check_size(size) -> tuple[int, int]:
    height, width = (int(v) for v in size)
    if height < 1 or width < 1:
        raise HintError(f"cannot resize to {width}x{height} pixels")
    return height, width


def _cells(length: int, cells: int) -> tuple[np.ndarray, np.ndarray, int]:
    """The source cells of ``torch.nn.functional.adaptive_max_pool2d`` along one axis.

    Cell d in [0, cells) covers source indices floor(d * length / cells) .. ceil((d + 1) * length /
    cells) - 1; neighbours share an index where a bound is not whole. Returns (firsts, lasts,
    window): ``window`` is the shortest cell's length, and firsts / lasts (int64, one per cell)
    start the first and the last ``window`` indices of each cell, which together cover it since no
    cell is longer than twice the shortest.
    """
    index = np.arange(cells, dtype=np.int64)
    firsts = index * length // cells
    ends = -(-(index + 1) * length // cells)
    window = int((ends - firsts).min())
    return firsts, ends - window, window


def _max_of_windows(windows: np.ndarray, firsts: np.ndarray, lasts: np.ndarray, axis: int) -> np.ndarray:
    """Per cell along ``axis``, the larger of the two window maxima at ``firsts`` and ``lasts``."""
    out = windows.take(firsts, axis=axis)
    if not np.array_equal(firsts, lasts):
        np.maximum(out, windows.take(lasts, axis=axis), out=out)
    return out


def _max_pool(edges: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """HxW float32 -> size=(height, width) <= (H, W), each pixel the maximum of its source cell.

    Gives exactly ``adaptive_max_pool2d``: a dilation makes each pixel the maximum of the window
    starting there, and each cell takes the larger of its two windows.
    """
    row_firsts, row_lasts, window_rows = _cells(edges.shape[0], size[0])
    col_firsts, col_lasts, window_cols = _cells(edges.shape[1], size[1])
    windows = cv2.dilate(edges, np.ones((window_rows, window_cols), np.uint8), anchor=(0, 0))
    rows = _max_of_windows(windows, row_firsts, row_lasts, axis=0)
    return _max_of_windows(rows, col_firsts, col_lasts, axis=1)


def resize_edges(edges: np.ndarray, size) -> np.ndarray:
    """HxW white-on-black edges -> size=(height, width), float32 in [0, 1].

    Each axis that shrinks takes the maximum over the source cell (as ``adaptive_max_pool2d``), so a
    one-pixel line survives; each axis that grows is interpolated bilinearly.
    """
    height, width = _check_size(size)
    edges = np.asarray(edges, dtype=np.float32)
    pooled = (min(height, edges.shape[0]), min(width, edges.shape[1]))
    if pooled != edges.shape:
        edges = _max_pool(edges, pooled)
    if pooled == (height, width):
        return edges
    return np.clip(cv2.resize(edges, (width, height), interpolation=cv2.INTER_LINEAR), 0.0, 1.0)


def resize_strokes(layer: np.ndarray, size) -> np.ndarray:
    """HxWx4 premultiplied stroke layer -> size=(height, width), float32, RGB <= A kept."""
    height, width = _check_size(size)
    layer = np.asarray(layer, dtype=np.float32)
    if layer.shape[:2] == (height, width):
        return layer
    shrinking = height * width < layer.shape[0] * layer.shape[1]
    resized = cv2.resize(layer, (width, height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
    return np.clip(resized, 0.0, 1.0)


def stretch_note(strokes_size, drawing_size) -> str | None:
    """What a person should know when ``resize_strokes`` fits a stroke layer to a drawing, or None.

    strokes_size, drawing_size: (height, width) in pixels. None when the sizes are equal; a note that the
    layer was scaled when only the size differs; one that it was stretched when the aspect differs by
    more than 1 % (the strokes then land off the places they were painted on).
    """
    (sh, sw), (dh, dw) = (int(v) for v in strokes_size[:2]), (int(v) for v in drawing_size[:2])
    if (sh, sw) == (dh, dw):
        return None
    sizes = f"the stroke layer is {sw}x{sh} and the drawing {dw}x{dh}"
    if abs((sw / sh) / (dw / dh) - 1.0) <= 0.01:
        return f"{sizes}: the strokes were scaled to the drawing (same aspect)"
    return (f"{sizes}: the strokes were stretched to the drawing's aspect, so they may miss the parts they "
            "were painted over; paint them on a layer of the drawing's size")


def resize_hint(hint: np.ndarray, size) -> np.ndarray:
    """5xHxW hint -> 5 x height x width, each part by its own rule."""
    hint = np.asarray(hint, dtype=np.float32)
    if hint.ndim != 3 or hint.shape[0] != HINT_CHANNELS:
        raise HintError(f"resize_hint takes a 5xHxW hint, got shape {hint.shape}")
    edges = resize_edges(hint[EDGE_CHANNEL], size)
    strokes = resize_strokes(np.moveaxis(hint[1:], 0, 2), size)
    out = np.empty((HINT_CHANNELS,) + edges.shape, dtype=np.float32)
    out[EDGE_CHANNEL] = edges
    out[1:] = np.moveaxis(strokes, 2, 0)
    return out


def resize_hint_batch(hint, size):
    """Torch version of ``resize_hint`` for a Bx5xHxW tensor, on its own device."""
    import torch
    import torch.nn.functional as F

    height, width = _check_size(size)
    if hint.ndim != 4 or hint.shape[1] != HINT_CHANNELS:
        raise HintError(f"resize_hint_batch takes a Bx5xHxW hint, got shape {tuple(hint.shape)}")
    if tuple(hint.shape[-2:]) == (height, width):
        return hint
    edges = hint[:, :1]
    pooled = (min(height, edges.shape[-2]), min(width, edges.shape[-1]))
    if pooled != tuple(edges.shape[-2:]):
        edges = F.adaptive_max_pool2d(edges, pooled)
    if pooled != (height, width):
        edges = F.interpolate(edges, size=(height, width), mode="bilinear", align_corners=False)
    strokes = hint[:, 1:]
    if height <= strokes.shape[-2] and width <= strokes.shape[-1]:
        strokes = F.interpolate(strokes, size=(height, width), mode="area")
    else:
        strokes = F.interpolate(strokes, size=(height, width), mode="bilinear", align_corners=False)
    return torch.cat([edges, strokes], dim=1).clamp_(0.0, 1.0)


def short_side_size(size, short_side: int) -> tuple[int, int]:
    """(height, width) scaled so that the shorter side is ``short_side`` pixels, the aspect kept (rounded)."""
    height, width = _check_size(size)
    if short_side < 2:
        raise HintError(f"a resolution of {short_side} pixels is too small; use 0 to keep the drawing's size")
    scale = short_side / min(height, width)
    return max(2, round(height * scale)), max(2, round(width * scale))


def resize_drawing(drawing: np.ndarray, short_side: int) -> np.ndarray:
    """HxWxC uint8 drawing -> its shorter side at ``short_side`` pixels (area when shrinking, cubic when
    enlarging, so thin lines stay continuous); the same array when it already is that size."""
    height, width = short_side_size(drawing.shape[:2], short_side)
    if (height, width) == drawing.shape[:2]:
        return drawing
    shrinking = height * width < drawing.shape[0] * drawing.shape[1]
    resized = cv2.resize(drawing, (width, height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC)
    return resized.reshape(height, width, *drawing.shape[2:])

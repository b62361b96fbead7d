"""Resizing edge maps, stroke layers and hints without losing thin lines or bleeding colour.

Edges (white on black) are downscaled by the maximum over each target pixel's source area, so a
one-pixel line survives any reduction; they are upscaled bilinearly. Stroke layers are
premultiplied, so area (down) and bilinear (up) filtering, whose weights are non-negative, keep
RGB <= A everywhere: no colour appears where A = 0.
"""
from __future__ import annotations

import math

import cv2
import numpy as np

from .contract import EDGE_CHANNEL, HINT_CHANNELS, HintError, WHITE_ON_BLACK, check_polarity


def _check_size(size) -> tuple[int, int]:
    height, width = (int(v) for v in size)
    if height < 1 or width < 1:
        raise HintError(f"cannot resize to {width}x{height} pixels")
    return height, width


def resize_edges(edges: np.ndarray, size) -> np.ndarray:
    """HxW white-on-black edges -> size=(height, width), float32 in [0, 1]."""
    height, width = _check_size(size)
    edges = np.asarray(edges, dtype=np.float32)
    if edges.shape == (height, width):
        return edges
    if height < edges.shape[0] or width < edges.shape[1]:
        ky = math.ceil(edges.shape[0] / height) if height < edges.shape[0] else 1
        kx = math.ceil(edges.shape[1] / width) if width < edges.shape[1] else 1
        # the dilation's anchor makes each kept sample the maximum of the source cell it falls in
        widened = cv2.dilate(edges, np.ones((ky, kx), np.uint8), anchor=(0, 0))
        return cv2.resize(widened, (width, height), interpolation=cv2.INTER_NEAREST_EXACT)
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


def resize_hint(hint: np.ndarray, size, polarity: str = WHITE_ON_BLACK) -> np.ndarray:
    """5xHxW hint in ``polarity`` -> 5 x height x width, each part by its own rule."""
    check_polarity(polarity)
    hint = np.asarray(hint, dtype=np.float32)
    if hint.ndim != 3 or hint.shape[0] != HINT_CHANNELS:
        raise HintError(f"resize_hint takes a 5xHxW hint, got shape {hint.shape}")
    edges = hint[EDGE_CHANNEL] if polarity == WHITE_ON_BLACK else 1.0 - hint[EDGE_CHANNEL]
    edges = resize_edges(edges, size)
    strokes = resize_strokes(np.moveaxis(hint[1:], 0, 2), size)
    out = np.empty((HINT_CHANNELS,) + edges.shape, dtype=np.float32)
    out[EDGE_CHANNEL] = edges if polarity == WHITE_ON_BLACK else 1.0 - edges
    out[1:] = np.moveaxis(strokes, 2, 0)
    return out


def resize_hint_batch(hint, size, polarity: str = WHITE_ON_BLACK):
    """Torch version of ``resize_hint`` for a Bx5xHxW tensor, on its own device."""
    import torch
    import torch.nn.functional as F

    check_polarity(polarity)
    height, width = _check_size(size)
    if hint.ndim != 4 or hint.shape[1] != HINT_CHANNELS:
        raise HintError(f"resize_hint_batch takes a Bx5xHxW hint, got shape {tuple(hint.shape)}")
    if tuple(hint.shape[-2:]) == (height, width):
        return hint
    edges = hint[:, :1] if polarity == WHITE_ON_BLACK else 1.0 - hint[:, :1]
    strokes = hint[:, 1:]
    if height <= edges.shape[-2] and width <= edges.shape[-1]:
        edges = F.adaptive_max_pool2d(edges, (height, width))
        strokes = F.interpolate(strokes, size=(height, width), mode="area")
    else:
        edges = F.interpolate(edges, size=(height, width), mode="bilinear", align_corners=False)
        strokes = F.interpolate(strokes, size=(height, width), mode="bilinear", align_corners=False)
    edges = edges if polarity == WHITE_ON_BLACK else 1.0 - edges
    return torch.cat([edges, strokes], dim=1).clamp_(0.0, 1.0)

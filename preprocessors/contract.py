"""The hint contract shared by training and every host.

A hint is a float32 array or tensor in [0, 1] with 5 channels, channels-first, at pixel resolution:

==========  =================================================================================
channel     meaning
==========  =================================================================================
0 edge      the line drawing's edges: 1 on an edge, 0 elsewhere (white on black). A model that expects
            black on white gets 1 - edge where the hint meets it (``polarity``)
1-3 R,G,B   stroke colour premultiplied by A: the stroke colour where A = 1, 0 where A = 0
4 A         stroke presence: 1 on a stroke, 0 where there is none, in between after blur
==========  =================================================================================

Every checkpoint this project writes records ``HINT_FORMAT``, ``HINT_VERSION`` and its edge polarity,
so that a host builds exactly the hint the model was trained on; ``polarity`` holds the rule for a file that
records none and the one conversion.
"""
from __future__ import annotations

import cv2
import numpy as np

HINT_FORMAT = "color_stroke_canny"
HINT_VERSION = 1
HINT_CHANNELS = 5
EDGE_CHANNEL = 0
STROKE_CHANNELS = slice(1, 5)


class HintError(ValueError):
    """Input that cannot become a hint; the message says what came and what is expected."""


def make_hint(edges: np.ndarray, strokes: np.ndarray | None) -> np.ndarray:
    """Stack an edge map and a stroke layer into one hint.

    edges: HxW float in [0, 1], white on black (1 = edge), as ``canny`` returns it.
    strokes: HxWx4 float in [0, 1], premultiplied RGBA, as ``random_strokes``/``user_strokes`` return it;
    None for no strokes (A = 0 everywhere).
    Returns 5xHxW float32.
    """
    edges = np.asarray(edges)
    if edges.ndim != 2:
        raise HintError(f"edges must be HxW, got shape {edges.shape}")
    if strokes is None:
        hint = np.zeros((HINT_CHANNELS,) + edges.shape, dtype=np.float32)
        hint[EDGE_CHANNEL] = edges
        return hint
    strokes = np.asarray(strokes)
    if strokes.ndim != 3 or strokes.shape[2] != 4:
        raise HintError(f"strokes must be HxWx4 RGBA, got shape {strokes.shape}")
    if edges.shape != strokes.shape[:2]:
        raise HintError(
            f"edges are {edges.shape[1]}x{edges.shape[0]} but strokes are {strokes.shape[1]}x{strokes.shape[0]} "
            "(width x height); resize one to the other first (resize_strokes / resize_edges)"
        )
    hint = np.empty((HINT_CHANNELS,) + edges.shape, dtype=np.float32)
    hint[EDGE_CHANNEL] = edges
    # OpenCV writes each plane straight into the hint (float32 in, float32 planes out): 3.5x numpy's moveaxis copy
    cv2.split(np.ascontiguousarray(strokes, dtype=np.float32), list(hint[STROKE_CHANNELS]))
    return hint


def strokes_removed(hint):
    """A copy of ``hint`` (a hint or a batch of them, channels-first as above: ...x5xHxW numpy array or torch
    tensor) with the stroke channels cleared (RGB = A = 0): the same drawing without colour hints. The edge
    channel is kept as it is, in whichever polarity it is."""
    bare = hint.copy() if isinstance(hint, np.ndarray) else hint.clone()
    bare[..., STROKE_CHANNELS, :, :] = 0
    return bare


def make_hint_batch(edges, strokes):
    """Torch version of ``make_hint``: edges Bx1xHxW, strokes Bx4xHxW (tensors in [0, 1]) -> Bx5xHxW."""
    import torch

    if edges.ndim != 4 or edges.shape[1] != 1:
        raise HintError(f"edges must be Bx1xHxW, got shape {tuple(edges.shape)}")
    if strokes.ndim != 4 or strokes.shape[1] != 4:
        raise HintError(f"strokes must be Bx4xHxW, got shape {tuple(strokes.shape)}")
    if edges.shape[0] != strokes.shape[0] or edges.shape[2:] != strokes.shape[2:]:
        raise HintError(f"edges {tuple(edges.shape)} and strokes {tuple(strokes.shape)} differ in batch or size")
    return torch.cat([edges, strokes.to(edges.dtype)], dim=1)


def validate_hint(hint) -> None:
    """Raise HintError unless ``hint`` (numpy or torch, [B]x5xHxW) is finite and within [0, 1]."""
    shape = tuple(hint.shape)
    if len(shape) not in (3, 4) or shape[-3] != HINT_CHANNELS:
        raise HintError(f"a hint is [B]x{HINT_CHANNELS}xHxW ([edge, R, G, B, A]); got shape {shape}")
    values = hint if isinstance(hint, np.ndarray) else hint.detach().float().cpu().numpy()
    if not np.isfinite(values).all():
        raise HintError("the hint holds NaN or inf values")
    if values.min() < 0.0 or values.max() > 1.0:
        raise HintError(f"hint values must lie in [0, 1], got [{values.min():.3g}, {values.max():.3g}]")


def hint_preview(hint: np.ndarray) -> np.ndarray:
    """What the model sees, for people: HxWx3 uint8 with edges light on dark and strokes over them.

    hint: 5xHxW. Stroke colour (premultiplied) is composited over the edge image by
    its alpha: each channel is RGB + 0.8 * edge * (1 - A), clipped to [0, 1] and rounded to 0-255
    (halves to even).
    """
    hint = np.asarray(hint, dtype=np.float32)
    if hint.ndim != 3 or hint.shape[0] != HINT_CHANNELS:
        raise HintError(f"hint_preview takes one 5xHxW hint, got shape {hint.shape}")
    background = hint[EDGE_CHANNEL] * 0.8  # HxW light grey lines where no stroke covers them
    background *= 1.0 - hint[4]
    # (RGB + background) x 255, rounded and saturated to 0-255 in one pass per channel: 2.3x numpy's clip-scale-cast
    return cv2.merge([cv2.addWeighted(hint[channel], 255.0, background, 255.0, 0.0, dtype=cv2.CV_8U)
                      for channel in (1, 2, 3)])

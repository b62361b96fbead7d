"""ComfyUI IMAGE/MASK batches -> a STROKE_HINT batch and its IMAGE preview (host-free: torch + numpy).

ComfyUI's types: IMAGE is BxHxWxC float in [0, 1] (C = 3, or 4 from JoinImageWithAlpha), MASK is
BxHxW (or HxW) float in [0, 1]. LoadImage's MASK is 1 - alpha: 1 where the PNG is transparent.
Every hint is built by ``preprocessors.inference_hint``; this module only pairs up batches, reads
the mask the right way round and converts between torch and numpy.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..preprocessors import DEFAULT_EDGE_POLARITY, HintError, hint_preview, inference_hint, stretch_note
from .common import MASK_MARKS, log

LOADIMAGE_PLACEHOLDER = (64, 64)  # LoadImage's all-zero MASK for an image without alpha


def colour_from_int(value: int) -> tuple[float, float, float]:
    """ComfyUI's colour widget value 0xRRGGBB -> (r, g, b) in [0, 1]."""
    if not 0 <= int(value) <= 0xFFFFFF:
        raise HintError(f"background colour {value} is not a 0xRRGGBB value")
    value = int(value)
    return ((value >> 16) / 255.0, ((value >> 8) & 0xFF) / 255.0, (value & 0xFF) / 255.0)


def batch_size(name: str, tensor, expected_ndim: int) -> int:
    """Check that ``tensor`` has ``expected_ndim`` dimensions and return its batch size."""
    if tensor.ndim != expected_ndim:
        layout = "BxHxWxC" if expected_ndim == 4 else "BxHxW"
        raise HintError(f"{name} must be a {layout} batch, got shape {tuple(tensor.shape)}")
    return int(tensor.shape[0])


def common_batch(sizes: dict[str, int]) -> int:
    """The batch size all inputs broadcast to: every input holds 1 item or the same N."""
    n = max(sizes.values())
    wrong = {name: size for name, size in sizes.items() if size not in (1, n)}
    if wrong:
        listed = ", ".join(f"{name}: {size}" for name, size in sizes.items())
        raise HintError(f"batch sizes do not pair up ({listed}); give each input either 1 item or the same number")
    return n


def stroke_alpha(mask, strokes_size: tuple[int, int], mask_marks: str):
    """A MASK batch -> Bx1xHxW stroke alpha at the stroke layer's size, or None to ignore the mask.

    mask_marks: "no_stroke" (1 = transparent, LoadImage's MASK of a PNG layer) or "stroke" (1 = stroke).
    """
    if mask_marks not in MASK_MARKS:
        raise HintError(f"mask_marks must be one of {MASK_MARKS}, got {mask_marks!r}")
    mask = mask[None] if mask.ndim == 2 else mask
    batch_size("strokes_mask", mask, 3)
    size = tuple(mask.shape[-2:])
    if size == LOADIMAGE_PLACEHOLDER and size != strokes_size and not mask.any():
        log.info("color stroke: strokes_mask is LoadImage's empty mask of an image without transparency; "
                 "ignoring it and reading strokes by the background colour")
        return None
    mask = mask.float()[:, None]
    if size != strokes_size:
        log.warning("color stroke: strokes_mask is %dx%d but the strokes image is %dx%d; stretching the mask",
                    size[1], size[0], strokes_size[1], strokes_size[0])
        mask = F.interpolate(mask, size=strokes_size, mode="bilinear", align_corners=False).clamp_(0.0, 1.0)
    return 1.0 - mask if mask_marks == "no_stroke" else mask


def to_uint8(image) -> np.ndarray:
    """BxHxWxC float tensor in [0, 1] -> uint8 numpy, rounded as ``preprocessors`` rounds."""
    return image.detach().float().cpu().mul(255.0).add_(0.5).clamp_(0.0, 255.0).to(torch.uint8).numpy()


def to_numpy(tensor) -> np.ndarray:
    """Float tensor -> float32 numpy on the CPU (no copy when it already is one)."""
    return tensor.detach().cpu().float().numpy()


def build_hints(lineart, strokes=None, strokes_mask=None, low: float = 100, high: float = 200,
                edge_source: str = "canny", mask_marks: str = "no_stroke", background: int = 0xFFFFFF):
    """Hints for a batch of drawings and stroke layers.

    lineart: IMAGE BxHxWxC. strokes: IMAGE BsxHsxWsxC or None. strokes_mask: MASK or None.
    Each input holds 1 item or the same N; a single item is used for every drawing. Stroke layers of
    another size are stretched to the drawing (with a warning). Strokes are read from the mask when one
    is given, else from the alpha of a 4-channel IMAGE, else as pixels differing from ``background``
    (0xRRGGBB).
    Returns (hint Bx5xHxW float32 in [0, 1], edges white on black; preview BxHxWx3 float32).
    """
    sizes = {"lineart": batch_size("lineart", lineart, 4)}
    alpha = None
    if strokes is not None:
        sizes["strokes"] = batch_size("strokes", strokes, 4)
        if strokes_mask is not None:
            alpha = stroke_alpha(strokes_mask, tuple(strokes.shape[1:3]), mask_marks)
        if alpha is not None:
            sizes["strokes_mask"] = alpha.shape[0]
        note = stretch_note(strokes.shape[1:3], lineart.shape[1:3])
        if note:
            log.warning("color stroke: %s", note)
    elif strokes_mask is not None:
        raise HintError("strokes_mask is connected but strokes is not; connect the stroke image too")
    n = common_batch(sizes)

    drawings = to_uint8(lineart)
    layers = None if strokes is None else to_numpy(strokes)
    alphas = None if alpha is None else to_numpy(alpha[:, 0])
    colour = None if strokes is None or alphas is not None or strokes.shape[-1] == 4 else colour_from_int(background)
    hints, previews = [], []
    for i in range(n):
        hint = inference_hint(
            drawings[i % len(drawings)],
            None if layers is None else layers[i % len(layers)],
            mask=None if alphas is None else alphas[i % len(alphas)],
            background=colour,
            low=low, high=high, edge_source=edge_source, polarity=DEFAULT_EDGE_POLARITY,
        )
        hints.append(torch.from_numpy(hint))
        previews.append(torch.from_numpy(hint_preview(hint, DEFAULT_EDGE_POLARITY)))
    return stack(hints), stack(previews).float().div_(255.0)


def stack(items):
    """torch.stack, without its copy for a single item."""
    return items[0][None] if len(items) == 1 else torch.stack(items)

"""Canny edge maps, white on black (1 = edge), for the hint's edge channel.

``canny`` is the reference (OpenCV, as the Canny ControlNet annotators call it: on the RGB image,
taking the strongest channel's gradient). ``canny_batch`` reproduces it on a torch batch so the
trainer can run it on the GPU; ``benchmarks/bench_hints.py`` reports their agreement.
"""
from __future__ import annotations

from typing import NamedTuple

import cv2
import numpy as np

from .contract import HintError
from .image_io import composite_on_white, to_uint8

# tan(22.5°) and tan(67.5°): OpenCV's sector bounds for the gradient direction.
_TAN_22_5 = 0.41421356237309503
_TAN_67_5 = 2.414213562373095


class CannyThresholds(NamedTuple):
    """Canny's hysteresis thresholds (OpenCV's units: L1 Sobel gradient of the 0-255 image), low <= high."""

    low: float
    high: float


# The thresholds every host offers first and every caller gets unless it says otherwise: the Canny ControlNet
# annotators' 100 / 200. Every other place refers to this one.
DEFAULT_CANNY = CannyThresholds(low=100, high=200)


def check_thresholds(low: float, high: float) -> None:
    """Raise HintError unless 0 <= low <= high (OpenCV's units: gradient of 0-255 images)."""
    if not (0 <= low <= high):
        raise HintError(f"Canny thresholds must satisfy 0 <= low <= high, got low={low}, high={high}")


def canny(image, low: float = DEFAULT_CANNY.low, high: float = DEFAULT_CANNY.high) -> np.ndarray:
    """Canny edges of ``image`` as HxW float32 in {0, 1}, 1 on an edge.

    image: HxW, HxWx3 or HxWx4 (alpha composited onto white), uint8, uint16 or float in [0, 1].
    low, high: hysteresis thresholds on OpenCV's L1 Sobel gradient of the 0-255 image.
    """
    check_thresholds(low, high)
    pixels = composite_on_white(to_uint8(image, "line drawing"))
    if pixels.shape[2] == 1:
        pixels = pixels[..., 0]
    return (cv2.Canny(np.ascontiguousarray(pixels), low, high) > 0).astype(np.float32)


def canny_batch(images, low: float = DEFAULT_CANNY.low, high: float = DEFAULT_CANNY.high):
    """Canny edges of a Bx3xHxW (or Bx1xHxW) torch batch in [0, 1] -> Bx1xHxW float in {0, 1}.

    Same algorithm and thresholds as ``canny`` (Sobel 3x3 on the 0-255 image, L1 magnitude, the
    strongest channel's gradient, OpenCV's 4-sector non-maximum suppression, 8-connected hysteresis),
    on whatever device the batch lives.
    """
    import torch
    import torch.nn.functional as F
    from kornia.filters import spatial_gradient

    check_thresholds(low, high)
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise HintError(f"canny_batch takes Bx3xHxW or Bx1xHxW, got shape {tuple(images.shape)}")
    pixels = torch.round(images.float().clamp(0, 1) * 255.0)
    gradient = spatial_gradient(pixels, mode="sobel", order=1, normalized=False)  # Bx C x2xHxW
    gx, gy = gradient[:, :, 0], gradient[:, :, 1]
    magnitude = gx.abs() + gy.abs()
    strongest = magnitude.argmax(dim=1, keepdim=True)
    magnitude = magnitude.gather(1, strongest)
    gx, gy = gx.gather(1, strongest), gy.gather(1, strongest)
    # OpenCV's Canny suppresses the outermost pixel ring: the gradient there is not computed.
    magnitude[..., :1, :] = 0
    magnitude[..., -1:, :] = 0
    magnitude[..., :, :1] = 0
    magnitude[..., :, -1:] = 0

    padded = F.pad(magnitude, (1, 1, 1, 1))
    height, width = magnitude.shape[-2:]

    def shifted(dy: int, dx: int):
        return padded[..., 1 + dy : 1 + dy + height, 1 + dx : 1 + dx + width]

    ax, ay = gx.abs(), gy.abs()
    horizontal = ay < ax * _TAN_22_5
    vertical = ay > ax * _TAN_67_5
    same_sign = (gx * gy) >= 0
    keep_h = (magnitude > shifted(0, -1)) & (magnitude >= shifted(0, 1))
    keep_v = (magnitude > shifted(-1, 0)) & (magnitude >= shifted(1, 0))
    # Image rows grow downwards: with gx, gy of one sign the edge normal runs along the main diagonal.
    keep_d = torch.where(
        same_sign,
        (magnitude > shifted(-1, -1)) & (magnitude > shifted(1, 1)),
        (magnitude > shifted(-1, 1)) & (magnitude > shifted(1, -1)),
    )
    maximum = torch.where(horizontal, keep_h, torch.where(vertical, keep_v, keep_d))
    candidate = maximum & (magnitude > low)
    edges = (candidate & (magnitude > high)).float()
    candidate = candidate.float()
    while True:  # grow strong edges through 8-connected candidates until nothing changes
        grown = F.max_pool2d(edges, 3, stride=1, padding=1) * candidate
        if torch.equal(grown, edges):
            return edges
        edges = grown

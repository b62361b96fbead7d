"""The two ways a hint is built: from a training image, and from what a person gives a host.

Both end in ``contract.make_hint``; training and every host call these, never their own copy.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import cv2
import numpy as np

from .contract import HintError, make_hint
from .edges import DEFAULT_CANNY, canny, canny_batch
from .fill import default_gap, fill_and_areas, fill_strokes
from .image_io import composite_on_white, to_float, to_uint8
from .resize import resize_edges, resize_strokes
from .stroke_layer import StrokeReading
from .strokes import StrokeParams, random_strokes, user_strokes

EDGE_SOURCES = ("canny", "lineart")
_DEFAULT_STROKES = StrokeParams()  # the default of training_hint (frozen, so one shared instance is safe)


@dataclass(frozen=True)
class EdgeParams:
    """Training augmentations of the edge channel, so it covers the drawings people feed in.

    Canny's low threshold is uniform in [low_min, low_max] and high = low * uniform[ratio_min,
    ratio_max]. With ``blur_prob`` the image is Gaussian-blurred (sigma uniform in [blur_sigma_min,
    blur_sigma_max]) before Canny; with ``downscale_prob`` Canny runs on the image shrunk by a factor
    uniform in [downscale_min, downscale_max] and the edges are scaled back up.
    """

    low_min: float = 50.0
    low_max: float = 150.0
    ratio_min: float = 2.0
    ratio_max: float = 5.0
    blur_prob: float = 0.0
    blur_sigma_min: float = 0.5
    blur_sigma_max: float = 1.5
    downscale_prob: float = 0.0
    downscale_min: float = 1.5
    downscale_max: float = 2.5

    def __post_init__(self):
        if not 0 <= self.low_min <= self.low_max or not 1 <= self.ratio_min <= self.ratio_max:
            raise HintError("need 0 <= low_min <= low_max and 1 <= ratio_min <= ratio_max")
        if not (0 <= self.blur_prob <= 1 and 0 <= self.downscale_prob <= 1):
            raise HintError("blur_prob and downscale_prob must lie in [0, 1]")
        if not (0 < self.blur_sigma_min <= self.blur_sigma_max and 1 <= self.downscale_min <= self.downscale_max):
            raise HintError("need 0 < blur_sigma_min <= blur_sigma_max and 1 <= downscale_min <= downscale_max")

    @classmethod
    def fixed(cls, low: float = DEFAULT_CANNY.low, high: float = DEFAULT_CANNY.high) -> "EdgeParams":
        """No augmentation: Canny with exactly these thresholds."""
        return cls(low_min=low, low_max=low, ratio_min=high / low if low else 1.0, ratio_max=high / low if low else 1.0)

    @classmethod
    def from_dict(cls, values: dict) -> "EdgeParams":
        unknown = sorted(set(values) - {f.name for f in fields(cls)})
        if unknown:
            raise HintError(f"unknown edge parameters {unknown}")
        return cls(**values)

    def to_dict(self) -> dict:
        return asdict(self)


def training_edges(image, rng: np.random.Generator, params: EdgeParams = EdgeParams()) -> np.ndarray:
    """Augmented Canny of a training image: HxW float32 white on black."""
    pixels = composite_on_white(to_uint8(image, "image"))
    low = float(rng.uniform(params.low_min, params.low_max))
    high = low * float(rng.uniform(params.ratio_min, params.ratio_max))
    if rng.random() < params.blur_prob:
        pixels = cv2.GaussianBlur(pixels, (0, 0),
                                  sigmaX=float(rng.uniform(params.blur_sigma_min, params.blur_sigma_max)))
    if rng.random() < params.downscale_prob:
        factor = float(rng.uniform(params.downscale_min, params.downscale_max))
        height, width = pixels.shape[:2]
        small = cv2.resize(pixels, (max(2, round(width / factor)), max(2, round(height / factor))),
                           interpolation=cv2.INTER_AREA)
        return resize_edges(canny(small, low, high), (height, width))
    return canny(pixels, low, high)


def training_edges_batch(images, augmentations):
    """``training_edges`` on the accelerator: Bx3xHxW float in [0, 1] -> Bx1xHxW white-on-black edges, on the
    images' device, by ``canny_batch``.

    augmentations: one (low, high, blur sigma, downscale factor) per image, drawn as ``training_edges`` draws
    them (sigma 0 = no blur, factor 0 = no downscale; the data workers draw them, ``EdgeParams`` ranges).
    """
    import torch
    import torch.nn.functional as F

    edges = []
    for image, (low, high, sigma, factor) in zip(images, augmentations, strict=True):
        image = image[None]
        if sigma > 0:
            from kornia.filters import gaussian_blur2d

            radius = int(math.ceil(3 * sigma))
            image = gaussian_blur2d(image, (2 * radius + 1,) * 2, (sigma, sigma))
        size = image.shape[-2:]
        if factor > 0:
            small = [max(2, round(side / factor)) for side in size]
            image = F.interpolate(image, size=small, mode="area")
        found = canny_batch(image, low, high)
        edges.append(F.interpolate(found, size=size, mode="bilinear", align_corners=False) if factor > 0 else found)
    return torch.cat(edges)


def training_hint(
    image,
    rng: np.random.Generator,
    strokes: StrokeParams = _DEFAULT_STROKES,
    edges: EdgeParams = EdgeParams(),
    fill_probability: float = 0.0,
    fill_gap: int = 0,
    with_areas: bool = False,
):
    """The hint for one training image (already cropped): 5xHxW float32, procedural strokes + Canny (whose
    edges also bound the areas of ``colour="region"`` strokes).

    fill_probability: the chance that the strokes are filled between the lines of these edges
    (``fill_strokes``, gap ``fill_gap`` pixels, 0 = ``default_gap`` of the size), as the hosts fill a person's
    strokes; 0 draws nothing more from ``rng``, so sparse-only runs keep their random stream.
    with_areas: return (hint, the HxW int32 areas the strokes claim at that gap, filled or not:
    ``fill_and_areas``, one search of the areas for both); the hint and the random stream are the same either way.
    """
    edge_map = training_edges(image, rng, edges)
    layer = random_strokes(image, rng, strokes, edges=edge_map)
    gap = fill_gap or default_gap(*edge_map.shape)
    fill = fill_probability > 0 and rng.random() < fill_probability
    if with_areas:
        layer, areas = fill_and_areas(edge_map, layer, gap=gap, fill=fill)
        return make_hint(edge_map, layer), areas
    return make_hint(edge_map, fill_strokes(edge_map, layer, gap=gap) if fill else layer)


def lineart_edges(lineart, invert: str = "auto") -> np.ndarray:
    """Use a line drawing directly as the edge map: HxW float32 white on black.

    invert: "auto" (a mostly light image is taken as dark lines on white and inverted), "yes", "no".
    """
    grey = to_float(lineart, "line drawing")
    grey = composite_on_white(grey)
    grey = grey.mean(axis=2) if grey.shape[2] == 3 else grey[..., 0]
    if invert not in ("auto", "yes", "no"):
        raise HintError(f"invert must be 'auto', 'yes' or 'no', got {invert!r}")
    if invert == "yes" or (invert == "auto" and grey.mean() > 0.5):
        return 1.0 - grey
    return grey.astype(np.float32, copy=False)


def inference_hint(
    lineart,
    strokes=None,
    mask=None,
    background=None,
    low: float = DEFAULT_CANNY.low,
    high: float = DEFAULT_CANNY.high,
    edge_source: str = "canny",
    fill: bool = False,
    fill_gap: int = 0,
) -> np.ndarray:
    """The hint for a person's line drawing and painted strokes: 5xHxW float32 at the drawing's size.

    lineart: the drawing (HxW, HxWx3, HxWx4; uint8/uint16/float in [0, 1]).
    strokes / mask / background: as ``user_strokes`` reads them, or ``strokes`` a ``StrokeReading`` alone (what
    ``read_stroke_layer`` read: its layer is used as it is); None = no strokes (A = 0).
    A stroke layer of another size is resized to the drawing (stretched) by ``resize_strokes``.
    edge_source: "canny" (Canny of the drawing with low/high) or "lineart" (the drawing itself).
    fill: fill the strokes between the lines of these edges first (``fill_strokes``, as training fills its
    strokes), closing gaps up to ``fill_gap`` pixels (0 = ``default_gap`` of the drawing's size).
    """
    if edge_source == "canny":
        edges = canny(lineart, low, high)
    elif edge_source == "lineart":
        edges = lineart_edges(lineart)
    else:
        raise HintError(f"edge_source must be one of {EDGE_SOURCES}, got {edge_source!r}")
    read = isinstance(strokes, StrokeReading)
    if (strokes is None or read) and (mask is not None or background is not None):
        raise HintError("a stroke mask or background colour was given without a stroke image (or with a StrokeReading, "
                        "which is read already): give them with the stroke image")
    layer = strokes.layer if read else None if strokes is None else user_strokes(strokes, mask, background)
    layer = None if layer is None else resize_strokes(layer, edges.shape)
    if fill and layer is not None:
        layer = fill_strokes(edges, layer, gap=fill_gap or default_gap(*edges.shape))
    return make_hint(edges, layer)

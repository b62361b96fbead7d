"""Colour-stroke layers: the procedural generator used in training, and what a person paints.

A stroke layer is HxWx4 float32 in [0, 1], premultiplied RGBA: A = 1 on a stroke, RGB the stroke
colour times A, so RGB = 0 wherever A = 0 (see ``contract``).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

import cv2
import numpy as np

from .contract import HintError
from .edges import canny
from .image_io import as_channels_last, integer_scale, to_float

STROKE_COLOURS = ("pixel", "mean", "region", "lit")
LIT_SHARE = 0.1  # ``colour="lit"``: an area's colour is the mean of its brightest tenth of pixels
LUMA = np.array([0.299, 0.587, 0.114], np.float32)  # Rec. 601 luma weights of R, G, B
# The 8 neighbours a walk steps to, as (dy, dx).
NEIGHBOURS = np.array([(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)], dtype=np.int64)


@dataclass(frozen=True)
class StrokeParams:
    """The distribution of procedural strokes. Defaults are the reference algorithm.

    A sample gets ``count`` strokes. Each starts at a uniformly random pixel and walks ``length``
    steps to random 8-neighbours, stopping where it would leave the image; the walked pixels are
    thickened by a square max-filter of radius ``thickness`` (0 = none) and take the image's colour
    at each pixel (``colour="pixel"``), the walk's mean colour (``colour="mean"``), or, as a flat
    painter fills between the lines, the mean colour of the area of the drawing each pixel lies in
    (``colour="region"``: areas are the connected parts of the image between its edges; stroke pixels
    on an edge are left out), or that area's *lit* colour, the mean of its brightest tenth of pixels
    (``colour="lit"``): the local colour a painter picks for the flats before any shadow is rendered,
    so that the model learns to shade a painted colour rather than copy it. Later strokes paint over
    earlier ones. With probability ``empty_prob`` the sample has no strokes at all (the model must also
    work from the drawing alone). Then ``dots`` small squares of the local mean colour may be added, and
    with probability ``blur_prob`` the whole layer is blurred so that the model cannot copy strokes.
    """

    count_min: int = 1  # strokes per sample, uniform in [count_min, count_max] ...
    count_max: int = 10
    count_pow2: bool = False  # ... or 2**k with k uniform so that 2**k is in [count_min, count_max]
    length_min: int = 200  # walk steps, uniform in [length_min, length_max]
    length_max: int = 1000
    thickness: tuple = (0, 1, 2, 3)  # max-filter radius, drawn uniformly from these
    colour: str = "pixel"  # "pixel": the image's colour at each stroke pixel; "mean": the walk's mean;
    # "region": the mean colour of the area between the edges that the pixel lies in; "lit": that area's lit colour
    empty_prob: float = 0.0  # probability of a sample without strokes
    dots_max: int = 0  # extra "dot" strokes per sample, uniform in [0, dots_max]
    dot_size_min: int = 3  # dot side in pixels, uniform in [dot_size_min, dot_size_max]
    dot_size_max: int = 9
    blur_prob: float = 0.5  # probability of blurring the whole layer
    blur_sigma_min: float = 1.0  # blur sigma in pixels, uniform in [blur_sigma_min, blur_sigma_max]
    blur_sigma_max: float = 3.0
    blur_mode: str = "gaussian"  # "gaussian", or "downscale": area-downscale by 2*sigma, then upscale

    def __post_init__(self):
        problems = []
        if not 1 <= self.count_min <= self.count_max:
            problems.append(f"need 1 <= count_min <= count_max, got {self.count_min}, {self.count_max}")
        if self.count_pow2 and _pow2_exponents(self.count_min, self.count_max).size == 0:
            problems.append(f"no power of two lies in [{self.count_min}, {self.count_max}]")
        if not 1 <= self.length_min <= self.length_max:
            problems.append(f"need 1 <= length_min <= length_max, got {self.length_min}, {self.length_max}")
        if not self.thickness or any(int(t) != t or t < 0 for t in self.thickness):
            problems.append(f"thickness must be a non-empty list of radii >= 0, got {self.thickness}")
        if self.colour not in STROKE_COLOURS:
            problems.append(f"colour must be one of {STROKE_COLOURS}, got {self.colour!r}")
        if not 0.0 <= self.empty_prob <= 1.0:
            problems.append(f"empty_prob must lie in [0, 1], got {self.empty_prob}")
        if self.dots_max < 0 or not 1 <= self.dot_size_min <= self.dot_size_max:
            problems.append("need dots_max >= 0 and 1 <= dot_size_min <= dot_size_max")
        if not 0.0 <= self.blur_prob <= 1.0:
            problems.append(f"blur_prob must lie in [0, 1], got {self.blur_prob}")
        if not 0.0 < self.blur_sigma_min <= self.blur_sigma_max:
            problems.append(f"need 0 < blur_sigma_min <= blur_sigma_max, got {self.blur_sigma_min}, "
                            f"{self.blur_sigma_max}")
        if self.blur_mode not in ("gaussian", "downscale"):
            problems.append(f"blur_mode must be 'gaussian' or 'downscale', got {self.blur_mode!r}")
        if problems:
            raise HintError("invalid stroke parameters: " + "; ".join(problems))
        object.__setattr__(self, "thickness", tuple(int(t) for t in self.thickness))

    @classmethod
    def from_dict(cls, values: dict) -> "StrokeParams":
        """Build from a dict (a config file); unknown keys raise HintError naming them."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise HintError(f"unknown stroke parameters {unknown}; known: {sorted(known)}")
        return cls(**values)

    def to_dict(self) -> dict:
        return asdict(self)

    def denser(self, factor: float) -> "StrokeParams":
        """These parameters with ``factor`` times as many strokes (count_min and count_max scaled and rounded,
        at least 1; with count_pow2 the factor is rounded to a power of two so that the range keeps one)."""
        if factor == 1.0:
            return self
        if self.count_pow2:
            factor = 2.0 ** round(np.log2(factor))
        low = max(1, round(self.count_min * factor))
        return replace(self, count_min=low, count_max=max(low, round(self.count_max * factor)))


def _pow2_exponents(low: int, high: int) -> np.ndarray:
    exponents = np.arange(0, 31)
    return exponents[(2**exponents >= low) & (2**exponents <= high)]


def draw_count(rng: np.random.Generator, params: StrokeParams) -> int:
    """The number of strokes for one sample."""
    if params.count_pow2:
        return int(2 ** rng.choice(_pow2_exponents(params.count_min, params.count_max)))
    return int(rng.integers(params.count_min, params.count_max + 1))


def walk(rng: np.random.Generator, height: int, width: int, params: StrokeParams) -> np.ndarray:
    """One random walk: Nx2 int64 (y, x) pixels, starting pixel first, cut where it leaves the image.

    Draws from ``rng`` in a fixed order: start y, start x, length, the directions.
    """
    start = np.array([rng.integers(0, height), rng.integers(0, width)], dtype=np.int64)
    length = int(rng.integers(params.length_min, params.length_max + 1))
    steps = NEIGHBOURS[rng.integers(0, 8, size=length)]
    path = np.concatenate([start[None], start + np.cumsum(steps, axis=0)])
    outside = (path[:, 0] < 0) | (path[:, 0] >= height) | (path[:, 1] < 0) | (path[:, 1] >= width)
    first_outside = int(np.argmax(outside)) if outside.any() else len(path)
    return path[:first_outside]


def random_strokes(image, rng: np.random.Generator, params: StrokeParams | None = None, edges=None,
                   **overrides) -> np.ndarray:
    """Procedural strokes sampled from ``image``'s colours: HxWx4 float32 premultiplied RGBA.

    image: HxWx3 (or HxWx4, alpha ignored; or HxW) uint8/uint16/float in [0, 1].
    rng: a numpy Generator; the same seed gives the same layer.
    params / overrides: a StrokeParams, and/or its fields by name.
    edges: HxW edge map (white on black, > 0.5 = edge) that bounds the areas of ``colour="region"`` / ``"lit"``
        (the hint's own edge channel in training); None = Canny of ``image`` at its default thresholds.
    """
    params = replace(params or StrokeParams(), **overrides)
    pixels = as_channels_last(image, "image")
    if pixels.dtype.kind == "f":
        pixels = to_float(pixels, "image")  # checks the [0, 1] range
    colours = pixels[..., :3] if pixels.shape[2] >= 3 else np.repeat(pixels, 3, axis=2)
    scale = np.float32(integer_scale(pixels.dtype))  # colours are read, and scaled, only at stroke pixels
    height, width = colours.shape[:2]
    layer = np.zeros((height, width, 4), dtype=np.float32)
    if params.empty_prob and rng.random() < params.empty_prob:
        return layer
    if params.colour in ("region", "lit"):
        labels, area_colours = region_colours(colours, pixels if edges is None else edges, edges is None,
                                              lit=params.colour == "lit")
        area_colours /= scale

    for _ in range(draw_count(rng, params)):
        path = walk(rng, height, width, params)
        radius = params.thickness[int(rng.integers(0, len(params.thickness)))]
        top, left = np.maximum(path.min(axis=0) - radius, 0)
        bottom, right = np.minimum(path.max(axis=0) + radius + 1, (height, width))
        mask = np.zeros((bottom - top, right - left), dtype=np.uint8)
        mask[path[:, 0] - top, path[:, 1] - left] = 1
        if radius:
            mask = cv2.dilate(mask, np.ones((2 * radius + 1, 2 * radius + 1), np.uint8))
        box = layer[top:bottom, left:right]
        on = mask.astype(bool)
        if params.colour == "mean":
            box[on, :3] = colours[path[:, 0], path[:, 1]].mean(axis=0) / scale
        elif params.colour in ("region", "lit"):
            area = labels[top:bottom, left:right]
            on &= area > 0  # edge pixels belong to no area
            box[on, :3] = area_colours[area[on]]
        else:
            box[on, :3] = colours[top:bottom, left:right][on] / scale
        box[on, 3] = 1.0

    for _ in range(int(rng.integers(0, params.dots_max + 1)) if params.dots_max else 0):
        size = int(rng.integers(params.dot_size_min, params.dot_size_max + 1))
        y, x = int(rng.integers(0, max(height - size, 0) + 1)), int(rng.integers(0, max(width - size, 0) + 1))
        patch = colours[y : y + size, x : x + size]
        layer[y : y + size, x : x + size, :3] = patch.reshape(-1, 3).mean(axis=0) / scale
        layer[y : y + size, x : x + size, 3] = 1.0

    if rng.random() < params.blur_prob:
        sigma = float(rng.uniform(params.blur_sigma_min, params.blur_sigma_max))
        blur_layer(layer, sigma, params.blur_mode)
    return layer


def region_colours(colours: np.ndarray, edges_or_image: np.ndarray, from_image: bool,
                   lit: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(HxW int32 area labels, Kx3 float32 colour of each label, in ``colours``' units).

    Areas are the 4-connected parts of the picture between its edges: ``edges_or_image`` is an HxW edge
    map (white on black) or, when ``from_image``, the image whose Canny (default thresholds) gives it.
    Edges are thickened by one pixel so that a one-pixel gap does not join two areas; label 0 is the edges.
    An area's colour is the mean of its pixels, or with ``lit`` the mean of its brightest ``LIT_SHARE``
    (by Rec. 601 luma; at least one pixel): its colour where the light falls fully.
    """
    edge_map = canny(edges_or_image) if from_image else np.asarray(edges_or_image, dtype=np.float32)
    walls = cv2.dilate((edge_map > 0.5).astype(np.uint8), np.ones((3, 3), np.uint8))
    count, labels = cv2.connectedComponents(1 - walls, connectivity=4)
    flat = labels.ravel()
    pixels = colours.reshape(-1, 3).astype(np.float32)
    sizes = np.bincount(flat, minlength=count)
    if lit:
        order = np.lexsort((-(pixels @ LUMA), flat))  # by area, brightest first within each
        rank = np.arange(flat.size) - (np.cumsum(sizes) - sizes)[flat[order]]
        chosen = order[rank < np.ceil(LIT_SHARE * sizes[flat[order]])]
        flat, pixels = flat[chosen], pixels[chosen]
        sizes = np.bincount(flat, minlength=count)
    means = np.stack([np.bincount(flat, weights=pixels[:, c], minlength=count) for c in range(3)], axis=1)
    return labels, (means / np.maximum(sizes, 1)[:, None]).astype(np.float32)


def blur_layer(layer: np.ndarray, sigma: float, mode: str = "gaussian") -> None:
    """Blur a premultiplied HxWx4 layer in place.

    Only the box holding strokes, widened by the kernel radius (OpenCV uses 4 sigma for float
    images), is filtered; the result equals blurring the whole layer.
    """
    rows, cols = np.nonzero(layer[..., 3].any(axis=1))[0], np.nonzero(layer[..., 3].any(axis=0))[0]
    if rows.size == 0:
        return
    margin = int(np.ceil(4 * sigma)) + 1
    top, bottom = max(rows[0] - margin, 0), min(rows[-1] + margin + 1, layer.shape[0])
    left, right = max(cols[0] - margin, 0), min(cols[-1] + margin + 1, layer.shape[1])
    box = layer[top:bottom, left:right]
    if mode == "downscale":
        factor = max(2.0 * sigma, 1.0)
        small = (max(1, round(box.shape[1] / factor)), max(1, round(box.shape[0] / factor)))
        blurred = cv2.resize(cv2.resize(box, small, interpolation=cv2.INTER_AREA), box.shape[1::-1],
                             interpolation=cv2.INTER_LINEAR)
    else:
        blurred = cv2.GaussianBlur(box, (0, 0), sigmaX=sigma)
    np.clip(blurred, 0.0, 1.0, out=box)


def user_strokes(strokes, mask=None, background=None, tolerance: float = 0.02) -> np.ndarray:
    """Normalise what a person paints into an HxWx4 float32 premultiplied RGBA stroke layer.

    - ``strokes`` HxWx4 (a transparent PNG layer): alpha marks the strokes;
    - ``strokes`` HxWx3 plus ``mask`` HxW in [0, 1] (1 = stroke);
    - ``strokes`` HxWx3 plus ``background`` (an RGB colour in [0, 1] or 0-255 ints): pixels within
      ``tolerance`` (max abs difference per channel, in [0, 1]) of that colour mean "no stroke".
    Exactly one of these forms is used; ``mask`` wins over the alpha of an RGBA layer.
    An empty layer (nothing painted) is valid and gives A = 0 everywhere.
    """
    rgba = to_float(strokes, "stroke layer")
    if rgba.shape[2] == 1:
        rgba = np.repeat(rgba, 3, axis=2)
    rgb = rgba[..., :3]
    if mask is not None:
        if background is not None:
            raise HintError("give either a stroke mask or a background colour, not both")
        alpha = to_float(mask, "stroke mask")
        if alpha.shape[2] != 1:
            alpha = alpha[..., 3:] if alpha.shape[2] == 4 else alpha.mean(axis=2, keepdims=True)
        if alpha.shape[:2] != rgb.shape[:2]:
            raise HintError(
                f"the stroke mask is {alpha.shape[1]}x{alpha.shape[0]} but the stroke image is "
                f"{rgb.shape[1]}x{rgb.shape[0]}; they must be the same size"
            )
        alpha = alpha[..., 0]
    elif background is not None:
        colour = np.asarray(background, dtype=np.float32).reshape(-1)
        if colour.size != 3:
            raise HintError(f"background must be an RGB colour, got {background!r}")
        if colour.max() > 1.0:
            colour = colour / 255.0
        alpha = (np.abs(rgb - colour).max(axis=2) > tolerance).astype(np.float32)
    elif rgba.shape[2] == 4:
        alpha = rgba[..., 3]
    else:
        raise HintError(
            "an RGB stroke image needs a mask or a background colour to tell strokes from the rest; "
            "or pass an RGBA layer (transparent PNG) whose alpha marks the strokes"
        )
    alpha = np.ascontiguousarray(alpha, dtype=np.float32)
    return cv2.merge([rgb[..., channel] * alpha for channel in range(3)] + [alpha])  # contiguous, 3x faster



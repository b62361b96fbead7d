"""Toy world v2: a world a paint bucket cannot solve, with strokes as a person paints them.

A sample is a shaded background with 2-5 shaded shapes (polygons, ellipses, blobs) of continuous colours (any
in-gamut colour, no palette), outlined in dark lines of varying width (1-3 px at 128 px), with gaps of 1-3 px in
about 40 % of the outlines and short interior detail lines that close nothing. Every shape and the background are
lit from one direction (top left): a shape is a dome (its distance to its edge as height), the background a ramp,
so a model can learn the shading from the lines; the truth image is the shaded one. Sizes are given at 128 px and
scale with the picture.

Evaluation strokes (``user_strokes_v2``) come from a generator the training never uses: in about two thirds of the
areas, 1-3 smooth brush strokes 2-4 px wide (3-9 px at 512 px) inside the area, in the area's base colour with a
small jitter; the *sloppy* set draws the same strokes with one end carried 1-2 px past the area's outline.
"""
from __future__ import annotations

import cv2
import numpy as np

from .world import OUTLINE, PAPER, Sample, _shape_mask

LIGHT = np.array([-1.0, -1.0, 1.2]) / np.linalg.norm([-1.0, -1.0, 1.2])  # (x, y, z): from the top left, above
AMBIENT = 0.55
GAP_SHARE = 0.4
AREA_STROKED_SHARE = 2 / 3
COLOUR_JITTER = 8  # 0-255 levels a stroke's colour may differ from its area's base colour, per channel


def _shade(mask: np.ndarray, dome: bool) -> np.ndarray:
    """HxW float32 light factor in [AMBIENT, 1] over ``mask``: a dome over a shape, a ramp over the background."""
    size = mask.shape[0]
    if dome:
        height = cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, 5)
        height = np.sqrt(height / max(float(height.max()), 1.0)) * size / 6  # rounded profile
        gy, gx = np.gradient(height.astype(np.float32))
    else:
        gy = gx = np.full(mask.shape, -0.15, np.float32)  # the paper tilts towards the light
        ramp = np.linspace(0, 1, size, dtype=np.float32)
        gx, gy = gx + 0.2 * ramp[None, :] - 0.1, gy + 0.2 * ramp[:, None] - 0.1
    normal = np.stack([-gx, -gy, np.ones_like(gx)], axis=-1)
    normal /= np.linalg.norm(normal, axis=-1, keepdims=True)
    light = np.clip(normal @ LIGHT.astype(np.float32), 0.0, 1.0)
    return (AMBIENT + (1 - AMBIENT) * light).astype(np.float32)


def sample_v2(seed: int, size: int = 128) -> Sample:
    """The v2 sample for ``seed`` at ``size`` x ``size`` pixels. ``colours`` holds each region's mean truth colour
    (the shaded image's), ``regions`` -1 on every line (outlines and details)."""
    rng = np.random.default_rng(seed)
    scale = size / 128
    count = int(rng.integers(2, 6))
    base = rng.integers(20, 236, size=(count + 1, 3)).astype(np.float32)
    regions = np.zeros((size, size), np.int32)
    masks = []
    for index in range(1, count + 1):
        mask = _shape_mask(rng, size)
        regions[mask] = index
        masks.append(mask)
    shading = _shade(regions == 0, dome=False)
    for index in range(1, count + 1):
        own = regions == index
        shading = np.where(own, _shade(own, dome=True), shading)
    image = np.clip(base[regions] * shading[..., None], 0, 255)

    lines = np.zeros((size, size), np.uint8)
    for index in range(1, count + 1):
        own = (regions == index).astype(np.uint8)
        edge = own - cv2.erode(own, np.ones((3, 3), np.uint8))
        width = max(1, round(int(rng.integers(1, 4)) * scale))
        outline = cv2.dilate(edge, np.ones((width, width), np.uint8)) if width > 1 else edge
        if rng.random() < GAP_SHARE and edge.any():
            _cut(outline, edge, rng, max(1, round(int(rng.integers(1, 4)) * scale)))
        lines |= outline
    for index in range(1, count + 1):  # detail lines inside the shape, closing nothing
        inside = cv2.erode((regions == index).astype(np.uint8), np.ones((7, 7), np.uint8))
        ys, xs = np.nonzero(inside)
        for _ in range(int(rng.integers(0, 3)) if len(ys) else 0):
            start = int(rng.integers(0, len(ys)))
            angle = rng.uniform(0, np.pi)
            length = rng.uniform(4, 12) * scale
            end = (int(xs[start] + np.cos(angle) * length), int(ys[start] + np.sin(angle) * length))
            detail = np.zeros_like(lines)
            cv2.line(detail, (int(xs[start]), int(ys[start])), end, 1, 1)
            lines |= detail & inside
    on_line = lines.astype(bool)
    image = image.astype(np.uint8)
    image[on_line] = OUTLINE
    lineart = np.full((size, size, 3), PAPER, np.uint8)
    lineart[on_line] = OUTLINE
    regions[on_line] = -1
    truth_means = np.stack([image[regions == index].reshape(-1, 3).mean(axis=0) if (regions == index).any()
                            else base[index] for index in range(count + 1)])
    return Sample(image=image, lineart=lineart, regions=regions,
                  colours=np.clip(np.round(truth_means), 0, 255).astype(np.uint8), base_colours=base.astype(np.uint8))


def _cut(outline: np.ndarray, edge: np.ndarray, rng: np.random.Generator, length: int) -> None:
    """Cut a gap ``length`` pixels long into ``outline`` (HxW uint8, the 1-px ``edge`` thickened) in place, across its
    whole width: the outline pixels whose nearest edge pixel lies within ``length`` / 2 of a random edge pixel go."""
    ys, xs = np.nonzero(edge)
    pick = int(rng.integers(0, len(ys)))
    _, nearest = cv2.distanceTransformWithLabels(1 - edge, cv2.DIST_L2, 5, labelType=cv2.DIST_LABEL_PIXEL)
    on = outline.astype(bool)
    owner = nearest[on] - 1  # the nearest edge pixel, numbered in row-major order as np.nonzero lists them
    close = (ys[owner] - ys[pick]) ** 2 + (xs[owner] - xs[pick]) ** 2 <= (length / 2) ** 2
    rows, cols = np.nonzero(on)
    outline[rows[close], cols[close]] = 0


def _smooth_path(points: np.ndarray, rounds: int = 3) -> np.ndarray:
    """Chaikin corner cutting of an Nx2 polyline: a smooth brush path through the same region."""
    for _ in range(rounds):
        q = 0.75 * points[:-1] + 0.25 * points[1:]
        r = 0.25 * points[:-1] + 0.75 * points[1:]
        points = np.concatenate([points[:1], np.stack([q, r], axis=1).reshape(-1, 2), points[-1:]])
    return points


def user_strokes_v2(truth: Sample, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(clean, sloppy) strokes a person paints on ``truth`` (module docstring), each HxWx4 float32 premultiplied
    with A in {0, 1}: the same strokes, the sloppy ones with the end nearest the area's outline carried 1-2 px
    (at 128 px) past it."""
    size = truth.regions.shape[0]
    scale = size / 128
    clean = np.zeros((size, size, 4), np.float32)
    sloppy = clean.copy()
    for index in range(len(truth.colours)):
        if rng.random() >= AREA_STROKED_SHARE:
            continue
        width = max(1, round(float(rng.uniform(2, 4)) * scale))
        area = (truth.regions == index).astype(np.uint8)
        inside = cv2.erode(area, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * width + 1,) * 2))
        ys, xs = np.nonzero(inside)
        if not len(ys):
            continue
        depth = cv2.distanceTransform(area, cv2.DIST_L2, 5)  # to the area's outline
        for _ in range(int(rng.integers(1, 4))):
            picks = rng.integers(0, len(ys), size=int(rng.integers(2, 5)))
            path = _smooth_path(np.stack([xs[picks], ys[picks]], axis=1).astype(np.float32))
            mask = np.zeros((size, size), np.uint8)
            cv2.polylines(mask, [np.round(path).astype(np.int32)], False, 1, width)
            mask &= area  # a clean stroke stays in its area (a chord may leave a concave one)
            colour = np.clip(truth.base_colours[index].astype(np.int32)
                             + rng.integers(-COLOUR_JITTER, COLOUR_JITTER + 1, size=3), 0, 255) / 255.0
            overshoot = _past_the_outline(truth.regions, depth, mask, float(rng.uniform(1, 2)) * scale, width)
            for layer, on in ((clean, mask), (sloppy, mask | overshoot)):
                layer[on.astype(bool)] = (*colour, 1.0)
    return clean, sloppy


def _past_the_outline(regions: np.ndarray, depth: np.ndarray, stroke: np.ndarray, beyond: float,
                      width: int) -> np.ndarray:
    """HxW uint8: a stroke segment ``width`` wide from the pixel of ``stroke`` nearest its area's outline (``depth``:
    each pixel's distance to it) across the outline, reaching ``beyond`` px into the nearest other area."""
    ys, xs = np.nonzero(stroke)
    mask = np.zeros(stroke.shape, np.uint8)
    if not len(ys):
        return mask
    start = int(np.argmin(depth[ys, xs]))
    y, x = ys[start], xs[start]
    others = np.nonzero((depth == 0) & (regions >= 0))
    if not len(others[0]):
        return mask
    nearest = int(np.argmin((others[0] - y) ** 2 + (others[1] - x) ** 2))
    target = np.array([others[1][nearest], others[0][nearest]], np.float32)
    direction = target - (x, y)
    direction /= max(float(np.linalg.norm(direction)), 1e-6)
    end = np.round(target + direction * max(0.0, beyond - width / 2)).astype(int)  # the round cap reaches on
    cv2.line(mask, (int(x), int(y)), (int(end[0]), int(end[1])), 1, width)
    return mask

"""Flat-colour cartoon images with their line drawings and region maps, deterministic per seed.

A sample is a background of one palette colour with 2-5 shapes (polygons, ellipses, blobs) filled with
palette colours and outlined in dark lines. Shapes are drawn without antialiasing so every pixel
belongs to exactly one region, which makes the colouring's right answer exact.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

PALETTE = np.array([
    (230, 57, 70), (241, 250, 238), (168, 218, 220), (69, 123, 157), (29, 53, 87), (255, 183, 3),
    (251, 133, 0), (142, 202, 230), (33, 158, 188), (106, 153, 78), (188, 71, 73), (255, 200, 221),
], dtype=np.uint8)
OUTLINE = (20, 20, 20)
PAPER = 255


@dataclass
class Sample:
    """image: HxWx3 uint8 flat colours with outlines; lineart: HxWx3 uint8 dark lines on white paper;
    regions: HxW int32, 0 = background, k = k-th shape, -1 = outline pixels; colours: Kx3 uint8, the
    true colour of each region index (0 = background); base_colours: Kx3 uint8, the colour a person paints
    each region with, where it differs from ``colours`` (a shaded world, ``world_v2``), else None."""

    image: np.ndarray
    lineart: np.ndarray
    regions: np.ndarray
    colours: np.ndarray
    base_colours: np.ndarray | None = None


def _shape_mask(rng: np.random.Generator, size: int) -> np.ndarray:
    mask = np.zeros((size, size), np.uint8)
    centre = rng.integers(size // 6, size - size // 6, size=2)
    radius = int(rng.integers(size // 8, size // 3))
    kind = rng.integers(0, 3)
    if kind == 0:  # polygon
        corners = int(rng.integers(3, 7))
        angles = np.sort(rng.uniform(0, 2 * np.pi, corners))
        points = centre + np.stack([np.cos(angles), np.sin(angles)], 1) * radius * rng.uniform(0.6, 1.0, (corners, 1))
        cv2.fillPoly(mask, [points.astype(np.int32)], 1)
    elif kind == 1:  # ellipse
        axes = (radius, int(radius * rng.uniform(0.4, 1.0)))
        cv2.ellipse(mask, (int(centre[0]), int(centre[1])), axes, float(rng.uniform(0, 180)), 0, 360, 1, -1)
    else:  # blob: union of a few circles
        for _ in range(int(rng.integers(2, 5))):
            offset = rng.integers(-radius // 2, radius // 2 + 1, size=2)
            cv2.circle(mask, (int(centre[0] + offset[0]), int(centre[1] + offset[1])),
                       int(radius * rng.uniform(0.4, 0.8)), 1, -1)
    return mask.astype(bool)


def sample(seed: int, size: int = 64) -> Sample:
    """The sample for ``seed`` at ``size`` x ``size`` pixels."""
    rng = np.random.default_rng(seed)
    count = int(rng.integers(2, 6))
    picks = rng.choice(len(PALETTE), size=count + 1, replace=False)
    colours = PALETTE[picks]
    regions = np.zeros((size, size), np.int32)
    for index in range(1, count + 1):
        regions[_shape_mask(rng, size)] = index
    thickness = 1 if size <= 64 else 2
    boundary = np.zeros((size, size), bool)
    boundary[:, 1:] |= regions[:, 1:] != regions[:, :-1]
    boundary[1:, :] |= regions[1:, :] != regions[:-1, :]
    if thickness > 1:
        boundary = cv2.dilate(boundary.astype(np.uint8), np.ones((thickness, thickness), np.uint8)).astype(bool)
    image = colours[regions]
    image[boundary] = OUTLINE
    lineart = np.full((size, size, 3), PAPER, np.uint8)
    lineart[boundary] = OUTLINE
    regions = regions.copy()
    regions[boundary] = -1
    return Sample(image=image, lineart=lineart, regions=regions, colours=colours)

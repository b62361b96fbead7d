"""The stroke generator written the naive way, as the reference for speed and distribution.

Same algorithm and the same draws from the random generator, in the same order, as
``preprocessors.strokes.random_strokes`` (default parameters: no dots, "pixel" colours): a full-size
mask per stroke, a Python loop per step, ``skimage.filters.rank.maximum`` for thickening and
``skimage.filters.gaussian`` for the blur. Without blur the two give identical layers.
"""
from __future__ import annotations

import numpy as np
from skimage.filters import gaussian
from skimage.filters.rank import maximum

from preprocessors.strokes import NEIGHBOURS, StrokeParams, draw_count

_DEFAULT_PARAMS = StrokeParams()  # frozen, so one shared default instance is safe


def naive_random_strokes(image: np.ndarray, rng: np.random.Generator,
                         params: StrokeParams = _DEFAULT_PARAMS) -> np.ndarray:
    """image: HxWx3 uint8. Returns HxWx4 float32 premultiplied RGBA."""
    assert params.colour == "pixel" and params.dots_max == 0 and params.blur_mode == "gaussian"
    height, width = image.shape[:2]
    colours = image[..., :3].astype(np.float32) / 255.0
    layer = np.zeros((height, width, 4), dtype=np.float32)
    for _ in range(draw_count(rng, params)):
        y, x = int(rng.integers(0, height)), int(rng.integers(0, width))
        length = int(rng.integers(params.length_min, params.length_max + 1))
        directions = rng.integers(0, 8, size=length)
        mask = np.zeros((height, width), dtype=np.uint8)
        mask[y, x] = 1
        for direction in directions:
            y, x = y + NEIGHBOURS[direction][0], x + NEIGHBOURS[direction][1]
            if not (0 <= y < height and 0 <= x < width):
                break
            mask[y, x] = 1
        radius = params.thickness[int(rng.integers(0, len(params.thickness)))]
        if radius:
            mask = maximum(mask, np.ones((2 * radius + 1, 2 * radius + 1), dtype=np.uint8))
        on = mask > 0
        layer[on, :3] = colours[on]
        layer[on, 3] = 1.0
    if rng.random() < params.blur_prob:
        sigma = float(rng.uniform(params.blur_sigma_min, params.blur_sigma_max))
        layer = gaussian(layer, sigma=sigma, channel_axis=2, preserve_range=True).astype(np.float32)
    return layer

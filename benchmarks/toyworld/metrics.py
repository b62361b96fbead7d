"""How well a colouring matches the truth: stroke colour error, region colour error (edge F1 is
``training.metrics.edge_f1``, within ``EDGE_TOLERANCE``).

Colour distances are CIEDE2000 (scikit-image) in CIELAB; 0 is identical, about 2.3 is a just
noticeable difference, above 50 is a different colour.
"""
from __future__ import annotations

import numpy as np
from skimage.color import deltaE_ciede2000, rgb2lab

EDGE_TOLERANCE = 1  # pixels (city-block) within which a result's edge matches the drawing's (the usual slack)


def _lab(rgb: np.ndarray) -> np.ndarray:
    return rgb2lab(np.asarray(rgb, np.float32).reshape(-1, 1, 3) / 255.0).reshape(-1, 3)


def stroke_error(result: np.ndarray, strokes: np.ndarray) -> float:
    """Mean CIEDE2000 between ``result`` (HxWx3 uint8) and the stroke colour at stroke pixels.

    strokes: HxWx4 float premultiplied layer; pixels with A >= 0.5 count, their colour is RGB / A.
    NaN when there is no stroke.
    """
    on = strokes[..., 3] >= 0.5
    if not on.any():
        return float("nan")
    stroke_rgb = strokes[on][:, :3] / strokes[on][:, 3:] * 255.0
    return float(deltaE_ciede2000(_lab(result[on]), _lab(stroke_rgb)).mean())


def region_error(result: np.ndarray, regions: np.ndarray, colours: np.ndarray, strokes: np.ndarray) -> float:
    """Mean over the regions a stroke touches of CIEDE2000(result's mean colour there, true colour).

    regions: HxW int (-1 = outline, ignored); colours: Kx3 uint8 true colour per region index.
    The real test of colour propagation: a stroke covers a few pixels, the region needs all of them.
    """
    touched = np.unique(regions[(strokes[..., 3] >= 0.5) & (regions >= 0)])
    if touched.size == 0:
        return float("nan")
    means = np.stack([result[regions == index].reshape(-1, 3).mean(axis=0) for index in touched])
    return float(deltaE_ciede2000(_lab(means), _lab(colours[touched])).mean())


def palette_variety(images) -> float:
    """How varied the colours of ``images`` (HxWx3 uint8 each) are: the entropy of the share of pixels nearest
    to each palette colour (outline-dark pixels left out), over log(palette size); 1 = every palette colour
    equally often (as the world draws them), 0 = one colour everywhere."""
    from .world import OUTLINE, PALETTE

    pixels = np.concatenate([np.asarray(image, np.float32).reshape(-1, 3) for image in images])
    pixels = pixels[np.abs(pixels - np.float32(OUTLINE)).max(axis=1) > 40]
    if not len(pixels):
        return 0.0
    nearest = np.argmin(((pixels[:, None, :] - PALETTE[None].astype(np.float32)) ** 2).sum(axis=2), axis=1)
    share = np.bincount(nearest, minlength=len(PALETTE)) / len(nearest)
    share = share[share > 0]
    return float(-(share * np.log(share)).sum() / np.log(len(PALETTE)))


def pixel_error(result: np.ndarray, truth: np.ndarray, regions: np.ndarray, strokes: np.ndarray) -> float:
    """Mean per-pixel CIEDE2000 between ``result`` and the (shaded) ``truth`` (HxWx3 uint8 each) over the regions a
    stroke touches (``region_error``'s regions; lines left out): rendering, not just the flat colour, counts."""
    touched = np.unique(regions[(strokes[..., 3] >= 0.5) & (regions >= 0)])
    if touched.size == 0:
        return float("nan")
    where = np.isin(regions, touched)
    return float(deltaE_ciede2000(_lab(result[where]), _lab(truth[where])).mean())


LEAK_DELTA_E = 10.0  # how near a stroke's colour a pixel must be, and how far from its own area's, to count as leaked


def leak(result: np.ndarray, regions: np.ndarray, colours: np.ndarray, strokes: np.ndarray) -> float:
    """The share of the pixels of the regions no stroke touches that took a stroke's colour: within LEAK_DELTA_E of
    some painted colour (A >= 0.5) and farther than that from the region's true colour. 0 = the colour stayed where
    it was painted; NaN when every region is touched or nothing is painted."""
    on = strokes[..., 3] >= 0.5
    touched = np.unique(regions[on & (regions >= 0)])
    untouched = (regions >= 0) & ~np.isin(regions, touched)
    if not on.any() or not untouched.any():
        return float("nan")
    painted = np.unique(np.round(strokes[on][:, :3] / strokes[on][:, 3:] * 255.0), axis=0)
    pixels = _lab(result[untouched])
    near_stroke = np.zeros(len(pixels), bool)
    for colour in _lab(painted):
        near_stroke |= deltaE_ciede2000(pixels, np.broadcast_to(colour, pixels.shape)) < LEAK_DELTA_E
    own = _lab(colours[regions[untouched]])
    return float((near_stroke & (deltaE_ciede2000(pixels, own) >= LEAK_DELTA_E)).mean())

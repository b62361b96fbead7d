"""Flats: each area between the lines that a stroke touches takes its strokes' colour, as a painter's first pass.

``fill_strokes(lines, strokes)`` returns the stroke layer with the areas filled: painted pixels keep their colour
and alpha, filled pixels get the colour of the nearest painted pixel in their area at alpha ``fill_alpha`` (< 1,
so the model can tell painted from propagated), lines and areas no stroke touches stay empty. The contract of the
result is the stroke layer's (``contract``): HxWx4 float32 premultiplied RGBA in [0, 1].

How the areas are found (all OpenCV, one pass each):

1. ``lines``: the pixels of a line (an edge map's ones, or a drawing's dark pixels).
2. Pixels with no line within ``ceil(gap / 2)`` pixels (a disc) are *cores*; their 8-connected parts are the
   areas, so a gap in a line up to ``gap`` pixels wide does not join two areas (the gap's middle lies within
   ``gap / 2`` of the line ends).
3. Every other pixel that is not a line joins the core nearest to it (Euclidean) that lies in the same
   4-connected part of the line-free picture; a part with no core (an area narrower than ``gap``) is an area of
   its own. So no area crosses a line.
4. A painted pixel (A > 0.5) *claims* its area when no line lies within ``gap`` pixels (a disc): a stroke that
   crosses a line by a few pixels does not flood the neighbour. An area with no such pixel (narrower than twice the
   gap) is claimed by paint on its core; one without a core (narrower than the gap), when at least half of it is
   painted.
5. Each claimed area takes, pixel by pixel, the colour of the nearest claiming pixel in the area (Euclidean),
   so two colours in one area split it between them, never a mixed colour.

``fill_and_areas(lines, strokes)`` also numbers the areas that step 4 claims (training's area colour loss weighs
each alike), from the same search.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .contract import HintError
from .image_io import as_channels_last, composite_on_white, integer_scale, to_float, to_uint8

DEFAULT_GAP = 6  # pixels: the widest line gap closed at 512² (toy world v2 draws 1-3 px at 128², 4-12 at 512²)
MAX_FILL_GAP = 64  # pixels: the widest gap a person may ask the hosts' fill to close
DEFAULT_FILL_ALPHA = 0.5  # alpha of filled (not painted) pixels
PAINTED = 0.5  # alpha above which a stroke pixel is painted (claims, gives its colour)
SOLID = 0.99  # alpha from which a painted pixel is inside its stroke, not on its antialiased rim
THIN_AREA_COVERAGE = 0.5  # share of an area without a core that strokes must cover to claim it
MEND_STEPS = 3  # growth steps that give a pixel beside a line the area of its own side (``_mend_across_lines``)
COLOUR_TOLERANCE = 0.1  # largest per-channel difference (of full scale) of two stroke colours taken as one
# what every host's fill options say (ComfyUI's tooltips, the WebUIs' section)
FILL_HELP = ("Fill between the lines first: each area a stroke touches takes its colour (half-transparent in the "
             "hint, so the model tells it from the paint), as a painter lays flats, and the model renders them. Two "
             "colours in one area split it; a stroke that crosses a line a little does not flood the neighbour. The "
             "preview shows the flats. Models trained with fill expect it on.")
FILL_GAP_HELP = ("The widest gap in a line, in pixels, that the fill does not leak through; 0 = in proportion to the "
                 f"drawing ({DEFAULT_GAP} at 512 px). Raise it if colour runs through an open outline.")


def line_mask(lines) -> np.ndarray:
    """HxW bool, True on a line.

    lines: HxW (or HxWx1) edge map, 1 (or above half of full scale) on a line, as the hint's edge channel; or an
    HxWx3 / HxWx4 drawing, dark lines on light paper (alpha composited onto white), whose pixels darker than
    mid-grey are lines. uint8, uint16 or float in [0, 1].
    """
    pixels = as_channels_last(lines, "lines")
    if pixels.shape[2] == 1:
        return pixels[..., 0] > integer_scale(pixels.dtype) / 2
    grey = cv2.cvtColor(np.ascontiguousarray(composite_on_white(to_uint8(pixels, "lines"))), cv2.COLOR_RGB2GRAY)
    return grey < 128


def default_gap(height: int, width: int) -> int:
    """The gap (pixels) closed in a picture of this size unless the person says otherwise: ``DEFAULT_GAP`` at a
    512-pixel shorter side, in proportion to it, at least 2."""
    return max(2, round(DEFAULT_GAP * min(height, width) / 512))


def fill_strokes(lines, strokes, *, gap: int = DEFAULT_GAP, fill_alpha: float = DEFAULT_FILL_ALPHA) -> np.ndarray:
    """The stroke layer with every area between the lines that a stroke claims filled (see the module).

    lines: the drawing or its edges (``line_mask``). strokes: HxWx4 float premultiplied RGBA in [0, 1] of the
    same size (``user_strokes`` / ``random_strokes``). gap: the widest line gap closed, whole pixels >= 0 (0: a
    plain flood fill of the 4-connected areas). fill_alpha: the alpha of filled pixels, in (0, 1).
    Returns an HxWx4 float32 premultiplied layer: the strokes composited over the flats (``strokes`` itself, or
    its float32 copy, when nothing is painted or claims an area).
    """
    if not 0.0 < fill_alpha < 1.0:
        raise HintError(f"fill_alpha must lie strictly between 0 and 1 (1 is a painted stroke), got {fill_alpha!r}")
    layer, alpha, claimed = _claims(lines, strokes, gap)
    return layer if claimed is None else _flats(layer, alpha, *claimed, fill_alpha)


def _flats(layer: np.ndarray, alpha: np.ndarray, areas: Areas, claims: np.ndarray, fill_alpha: float) -> np.ndarray:
    """The strokes ``layer`` (HxWx4 float32, its alpha ``alpha``) composited over the flats of its claimed areas."""
    flats = flat_colours(layer, areas.labels, areas.count, claims, np.float32(fill_alpha))
    # premultiplied "over", the painted strokes on top of the flats, where there is paint (few pixels)
    soft = np.flatnonzero(alpha > 0)
    paint, under = layer.reshape(-1, 4)[soft], flats.reshape(-1, 4)[soft]
    flats.reshape(-1, 4)[soft] = paint + under * (1.0 - paint[:, 3:])
    return flats


def fill_and_areas(lines, strokes, *, gap: int = DEFAULT_GAP, fill: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(the layer, the areas it claims) from one search of the areas: the layer is ``fill_strokes(lines, strokes,
    gap=gap)`` when ``fill``, else ``strokes`` as float32; the areas an HxW int32 map of the areas that fill claims,
    numbered 1 .. K in the order of their labels, 0 on lines and in areas no stroke claims (all 0 when nothing is
    painted). Training's area colour loss weighs each area alike."""
    layer, alpha, claimed = _claims(lines, strokes, gap)
    if claimed is None:
        return layer, np.zeros(layer.shape[:2], np.int32)
    areas, claims = claimed
    numbers = np.zeros(areas.count, np.int32)
    owners = np.unique(np.take(areas.labels, claims))
    numbers[owners] = np.arange(1, len(owners) + 1, dtype=np.int32)
    return (_flats(layer, alpha, areas, claims, DEFAULT_FILL_ALPHA) if fill else layer), np.take(numbers, areas.labels)


def _claims(lines, strokes, gap):
    """(the strokes as float32, their HxW alpha, (``Areas``, claiming pixels) or None when nothing claims an area),
    after checking the arguments of ``fill_strokes``."""
    if isinstance(gap, bool) or int(gap) != gap or gap < 0:
        raise HintError(f"gap is a whole number of pixels >= 0, got {gap!r}")
    layer = np.asarray(strokes)
    if layer.ndim != 3 or layer.shape[2] != 4 or layer.dtype.kind != "f":
        raise HintError(f"strokes must be an HxWx4 float premultiplied RGBA layer (as user_strokes returns it), got "
                        f"shape {layer.shape} and dtype {layer.dtype}")
    layer = to_float(layer, "strokes")
    on_line = line_mask(lines)
    if on_line.shape != layer.shape[:2]:
        raise HintError(f"lines are {on_line.shape[1]}x{on_line.shape[0]} but strokes are "
                        f"{layer.shape[1]}x{layer.shape[0]} (width x height); resize one to the other first")
    alpha = cv2.extractChannel(layer, 3)
    painted = alpha > PAINTED
    if not painted.any():
        return layer, alpha, None
    areas = find_areas(on_line, -(-int(gap) // 2))
    claims = claiming_pixels(areas, painted, ~near_lines(on_line, int(gap)))
    return layer, alpha, ((areas, claims) if claims.size else None)


@dataclass(frozen=True)
class Areas:
    """The areas between the lines of a picture (steps 2-3 of the module).

    labels: HxW int32, 0 on lines, areas numbered 1 .. count - 1; cores: HxW bool, the core pixels; the areas
    numbered below ``core_count`` hold a core, those from it on (narrower than the gap) hold none.
    """

    labels: np.ndarray
    count: int
    cores: np.ndarray
    core_count: int


def near_lines(on_line: np.ndarray, radius: int) -> np.ndarray:
    """HxW bool: the pixels with a line within ``radius`` pixels (a disc; 0: the lines themselves)."""
    if radius == 0:
        return on_line
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    return cv2.dilate(on_line.view(np.uint8), disc).view(bool)


def find_areas(on_line: np.ndarray, radius: int) -> Areas:
    """The ``Areas`` of a picture whose lines are ``on_line`` (HxW bool), cores ``radius`` (= ceil(gap / 2))
    pixels from every line; radius 0: the areas are the 4-connected line-free parts, all of them cores."""
    part_count, parts = cv2.connectedComponents((~on_line).view(np.uint8), connectivity=4)
    cores = ~near_lines(on_line, radius)
    if radius == 0:
        return Areas(parts, part_count, cores, part_count)
    if not cores.any():
        return Areas(parts, part_count, cores, 1)
    # every pixel's nearest core, labelled by the core's 8-connected component (numbered from 1)
    _, labels = cv2.distanceTransformWithLabels((~cores).view(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_5,
                                                labelType=cv2.DIST_LABEL_CCOMP)
    # the line-free part each core lies in, read at the first pixel of each run of core pixels in a row (every core
    # has one; a tenth of the core pixels or fewer)
    run_starts = cores.copy()
    run_starts[:, 1:] &= ~cores[:, :-1]
    run_starts = np.flatnonzero(run_starts)
    core_labels = np.take(labels, run_starts)
    core_count = int(core_labels.max()) + 1
    core_part = np.zeros(core_count, np.int32)
    core_part[core_labels] = np.take(parts, run_starts)
    # a pixel whose nearest core lies in another part (across a line) is mended below
    wrong = np.take(core_part, labels) != parts
    wrong &= ~on_line
    np.putmask(labels, on_line, 0)
    count = _mend_across_lines(labels, wrong, parts, part_count, core_count) if wrong.any() else core_count
    return Areas(labels, count, cores, core_count)


def _mend_across_lines(labels: np.ndarray, wrong: np.ndarray, parts: np.ndarray, part_count: int,
                       core_count: int) -> int:
    """Relabel in place the pixels whose nearest core lies across a line (``wrong``): in ``MEND_STEPS`` steps each
    takes the area of a 4-neighbour in its own line-free part (the sliver beside a line end or a corner); the rest
    of a part (a strip narrower than the gap, or one reached only through it) becomes an area of its own, numbered
    ``core_count`` + its part, so that no area crosses a line. Returns the new number of labels."""
    flat_labels, flat_parts = labels.ravel(), parts.ravel()  # views: writes reach ``labels``
    pending = np.flatnonzero(wrong)  # few pixels: worked on by index, not over the whole picture
    flat_labels[pending] = 0
    height, width = labels.shape
    for _ in range(MEND_STEPS):
        for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1)):  # each pixel takes from its neighbour at (-dy, -dx)
            rows, cols = np.divmod(pending, width)
            valid = (rows - dy >= 0) & (rows - dy < height) & (cols - dx >= 0) & (cols - dx < width)
            source = np.where(valid, pending - dy * width - dx, pending)
            taken = flat_labels[source]  # read before any pixel of this direction is written
            take = valid & (taken > 0) & (flat_parts[source] == flat_parts[pending])
            flat_labels[pending[take]] = taken[take]
            pending = pending[~take]
    flat_labels[pending] = flat_parts[pending] + np.int32(core_count)
    return core_count + part_count


def claiming_pixels(areas: Areas, painted: np.ndarray, deep: np.ndarray) -> np.ndarray:
    """The flat (row-major) indices of the painted pixels (``painted``: HxW bool, A > PAINTED) that claim their
    area (step 4 of the module). deep: HxW bool, the pixels with no line within ``gap`` (a disc)."""
    painted_pixels = np.flatnonzero(painted)
    painted_areas = np.take(areas.labels, painted_pixels)
    keep = np.take(deep, painted_pixels)
    shallow = np.setdiff1d(painted_areas, painted_areas[keep])  # painted areas no deep paint claims
    if shallow.size:
        # of those, an area with deep pixels is not claimed (the paint is a stroke's tip over its line); one without
        # (narrower than twice the gap) is claimed by paint on its core, one without a core (narrower than the gap)
        # by coverage. Deep pixels are looked for on every other row and column: 4x cheaper, and an area whose
        # deep pixels all fall between them is barely wider than twice the gap
        has_deep = np.zeros(areas.count, bool)
        has_deep[areas.labels[::2, ::2][deep[::2, ::2]]] = True
        by_core = np.zeros(areas.count, bool)
        by_core[shallow[~has_deep[shallow] & (shallow < areas.core_count)]] = True
        keep |= np.take(by_core, painted_areas) & np.take(areas.cores, painted_pixels)
        thin = shallow[shallow >= areas.core_count]
        if thin.size:
            sizes = np.bincount(areas.labels.ravel(), minlength=areas.count)
            share = np.bincount(painted_areas, minlength=areas.count) / np.maximum(sizes, 1)
            covered = np.zeros(areas.count, bool)
            covered[thin] = share[thin] >= THIN_AREA_COVERAGE
            keep |= np.take(covered, painted_areas)
    keep &= painted_areas > 0
    return painted_pixels[keep]


def flat_colours(layer: np.ndarray, areas: np.ndarray, count: int, claims: np.ndarray, alpha) -> np.ndarray:
    """HxWx4 float32 premultiplied flats at ``alpha`` (step 5 of the module), 0 on lines and in unclaimed areas.

    The colours of an area's claiming pixels (``claims``, flat indices; only its solid ones, A >= ``SOLID``, when it
    has any) are grouped (``colour_groups``); an area with one group takes its colour, one with several takes, pixel
    by pixel, the group colour of the nearest of those pixels (its *seeds*) in it (``nearest_seeds``).
    """
    claim_rgba = layer.reshape(-1, 4)[claims]
    claim_areas = np.take(areas, claims)
    order = np.argsort(claim_areas, kind="stable")
    claims, claim_rgba, claim_areas = claims[order], claim_rgba[order], claim_areas[order]
    # a stroke's solid pixels give its colour; its antialiased rim may be darkened or mixed
    solid = claim_rgba[:, 3] >= SOLID
    starts = _segment_starts(claim_areas)
    has_solid = np.maximum.reduceat(solid.view(np.uint8), starts).view(bool)
    keep = solid | ~np.repeat(has_solid, np.diff(np.r_[starts, len(claims)]))
    claims, claim_areas = claims[keep], claim_areas[keep]
    straight = claim_rgba[keep, :3] / claim_rgba[keep, 3:]
    starts = _segment_starts(claim_areas)
    stops = np.r_[starts[1:], len(claims)]
    # an area whose colours all lie within the tolerance has one colour, their mean
    plain = (np.maximum.reduceat(straight, starts) - np.minimum.reduceat(straight, starts)).max(axis=1)
    plain = plain <= COLOUR_TOLERANCE
    palette = np.zeros((count, 4), np.float32)
    palette[claim_areas[starts[plain]], :3] = np.add.reduceat(straight, starts)[plain] / (stops - starts)[plain, None]
    palette[claim_areas[starts], 3] = alpha
    palette[claim_areas[starts], :3] *= alpha
    seeds, seed_colours = [], []
    for start, stop in zip(starts[~plain], stops[~plain], strict=True):
        centres, group = colour_groups(straight[start:stop])
        if len(centres) == 1:
            palette[claim_areas[start], :3] = centres[0] * alpha
        else:
            seeds.append(claims[start:stop])
            seed_colours.append(centres[group])
    if not seeds:
        return np.take(palette, areas, axis=0)  # 10x faster than palette[areas]
    seeds, seed_colours = np.concatenate(seeds), np.concatenate(seed_colours)
    order = np.argsort(seeds)
    seeds, seed_colours = seeds[order], seed_colours[order]
    seed_areas = np.take(areas, seeds)
    split = np.zeros(count, bool)
    split[seed_areas] = True
    in_split_area = np.take(split, areas)
    # one row per pixel of [palette; seed colours]: its area's colour, or that of its nearest seed
    rows = nearest_seeds(areas, seeds, seed_areas, in_split_area)
    rows += count - 1
    np.copyto(rows, areas, where=~in_split_area)
    table = np.concatenate([palette, np.concatenate([seed_colours * alpha,
                                                     np.full((len(seeds), 1), alpha, np.float32)], axis=1)])
    return np.take(table, rows, axis=0)


def _segment_starts(sorted_labels: np.ndarray) -> np.ndarray:
    """The indices where a new label begins in a sorted, non-empty label array."""
    return np.flatnonzero(np.r_[True, sorted_labels[1:] != sorted_labels[:-1]])


def nearest_seeds(areas: np.ndarray, seeds: np.ndarray, seed_areas: np.ndarray, in_split_area: np.ndarray):
    """HxW int32: for each pixel where ``in_split_area``, 1 + the index into ``seeds`` (N flat indices in
    ascending order; ``seed_areas`` their areas) of the nearest seed in the pixel's own area (Euclidean); other
    pixels hold any seed's.

    The nearest seed of the whole picture is found once, at half size (``_nearest_seed_at_half_size``: where two
    colours meet within an area, a pixel more or less makes no difference); an area where some pixel's nearest
    seed lies in another area is solved again from its own seeds, at full size within its bounding box
    (``cv2.distanceTransformWithLabels`` numbers the seeds 1..N in row-major order, which is ``seeds``' order).
    """
    nearest = _nearest_seed_at_half_size(areas.shape, seeds)
    astray = np.take(np.r_[-1, seed_areas].astype(np.int32), nearest) != areas
    astray &= in_split_area
    width = areas.shape[1]
    for area in np.unique(areas[astray]) if astray.any() else ():
        inside = areas == area
        left, top, box_width, box_height = cv2.boundingRect(inside.view(np.uint8))  # 8x faster than np.nonzero
        box = (slice(top, top + box_height), slice(left, left + box_width))
        own = np.flatnonzero(seed_areas == area)  # in row-major order within the box as well
        box_free = np.ones((box_height, box_width), np.uint8)
        box_free[seeds[own] // width - top, seeds[own] % width - left] = 0
        _, box_nearest = cv2.distanceTransformWithLabels(box_free, cv2.DIST_L2, cv2.DIST_MASK_5,
                                                         labelType=cv2.DIST_LABEL_PIXEL)
        np.copyto(nearest[box], (own + 1).astype(np.int32)[box_nearest - 1], where=inside[box])
    return nearest


def _nearest_seed_at_half_size(shape: tuple[int, int], seeds: np.ndarray) -> np.ndarray:
    """HxW int32: 1 + the index into ``seeds`` (ascending flat indices in a picture of ``shape``) of each pixel's
    nearest seed, found on the picture halved (4x cheaper) and scaled back; one seed stands for all in its 2x2."""
    height, width = shape
    small = ((height + 1) // 2, (width + 1) // 2)
    small_seeds = (seeds // width // 2) * small[1] + seeds % width // 2
    cells, first = np.unique(small_seeds, return_index=True)  # ascending: the order distanceTransform numbers them
    free = np.ones(small, np.uint8)
    free.ravel()[cells] = 0
    _, nearest = cv2.distanceTransformWithLabels(free, cv2.DIST_L2, cv2.DIST_MASK_5, labelType=cv2.DIST_LABEL_PIXEL)
    seed_of_cell = np.r_[0, first + 1].astype(np.int32)
    nearest = np.take(seed_of_cell, nearest)
    return cv2.resize(nearest, (2 * small[1], 2 * small[0]), interpolation=cv2.INTER_NEAREST)[:height, :width]


def colour_groups(colours: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(Kx3 group colours, N group index of each colour) for Nx3 straight colours in [0, 1]: the commonest colour
    (to 1/255) starts a group of every colour within ``COLOUR_TOLERANCE`` of it (per channel), and so on for the
    rest, so antialiased or noisy stroke edges join their stroke's colour instead of splitting the area."""
    packed = np.round(colours * 255.0).astype(np.int32) @ np.array([1 << 16, 1 << 8, 1], np.int32)
    codes, inverse, counts = np.unique(packed, return_inverse=True, return_counts=True)
    keys = np.stack([codes >> 16, (codes >> 8) & 255, codes & 255], axis=1)
    group_of_key = np.full(len(keys), -1, np.int64)
    centres = []
    for key in np.argsort(-counts, kind="stable"):
        if group_of_key[key] >= 0:
            continue
        near = (np.abs(keys - keys[key]).max(axis=1) <= COLOUR_TOLERANCE * 255.0) & (group_of_key < 0)
        group_of_key[near] = len(centres)
        centres.append(keys[key] / np.float32(255.0))
    return np.array(centres, np.float32), group_of_key[inverse.ravel()]

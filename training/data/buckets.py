"""Aspect-ratio buckets: training shapes of about RESOLUTION² pixels, so that wide and tall pictures train whole
instead of cut square, as SDXL was trained.

``bucket_sizes(resolution)`` lists the shapes; ``assign_buckets(sizes, buckets)`` gives each picture the shape
nearest its aspect ratio; ``folder_image_sizes`` reads the pictures' sizes from their file headers, once, before
training (a source that streams its pictures cannot tell them beforehand).
"""
from __future__ import annotations

import numpy as np

BUCKET_STEP = 64  # pixels: each side a multiple of it (the latent a multiple of 8, as every UNet level needs)
MAX_BUCKET_ASPECT = 2.5  # the widest (and tallest) bucket's width / height, as SDXL's own buckets go (1536 x 640)


def bucket_sizes(resolution: int, step: int = BUCKET_STEP, max_aspect: float = MAX_BUCKET_ASPECT) -> np.ndarray:
    """Kx2 int (height, width) in pixels, sorted by aspect (tall first): for each width a multiple of ``step``, the
    tallest height, a multiple of ``step`` too, whose area stays within ``resolution``², and the same turned upright;
    shapes whose aspect exceeds ``max_aspect`` either way are left out. The square ``resolution`` x ``resolution``
    is always one (``resolution`` a multiple of ``step``; a smaller resolution has the square alone)."""
    shapes = {(resolution, resolution)}
    if resolution >= step:
        for width in range(step, int(resolution * max_aspect) + 1, step):
            height = resolution * resolution // width // step * step
            if height >= step and 1 / max_aspect <= width / height <= max_aspect:
                shapes.update({(height, width), (width, height)})
    return np.array(sorted(shapes, key=lambda shape: shape[1] / shape[0]), dtype=np.int64)


def assign_buckets(sizes: np.ndarray, buckets: np.ndarray) -> np.ndarray:
    """N bucket indices for Nx2 (height, width) picture sizes: the bucket of the nearest log aspect ratio (a size of
    0, unknown, goes to the bucket nearest square)."""
    sizes = np.asarray(sizes, dtype=np.float64)
    known = (sizes > 0).all(axis=1)
    aspect = np.where(known, np.log(np.where(known[:, None], sizes, 1.0)[:, 1] / np.where(known, sizes[:, 0], 1.0)),
                      0.0)
    bucket_aspect = np.log(buckets[:, 1] / buckets[:, 0])
    return np.abs(aspect[:, None] - bucket_aspect[None, :]).argmin(axis=1)


def folder_image_sizes(source) -> np.ndarray:
    """Nx2 int (height, width) of a ``FolderSource``'s pictures, from their headers (0, 0 where unreadable: the
    loader skips and counts those when it reaches them)."""
    from PIL import Image

    sizes = np.zeros((len(source), 2), dtype=np.int64)
    for index in range(len(source)):
        path, _ = source.records[index]
        try:
            with Image.open(path) as image:
                sizes[index] = image.height, image.width
        except (OSError, ValueError):
            continue
    return sizes

"""One training sample: load, resize, crop, flip, caption dropout and the hint, on a DataLoader worker.

Randomness comes only from a numpy Generator seeded by (seed, epoch, index), so a sample is the same
whatever worker makes it and a resumed run sees exactly the samples it would have seen.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import cv2
import numpy as np
import torch

from preprocessors import EdgeParams, StrokeParams, random_strokes, training_hint

from .decode import SampleSkipped, decode_rgb


def sample_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The per-sample generator: fixed by the run's seed, the epoch and the dataset index."""
    return np.random.default_rng([seed, epoch, index])


class Cropped(NamedTuple):
    """pixels: height x width x 3 uint8 of the size asked for; size_ids: int64 [original height, original width,
    crop top, crop left, height, width] in pixels (SDXL's ``time_ids``: the crop's corner in the resized image,
    mirrored when flipped)."""

    pixels: np.ndarray
    size_ids: np.ndarray


def resize_and_crop(pixels: np.ndarray, size, rng: np.random.Generator, crop: str, flip: bool) -> Cropped:
    """HxWx3 uint8 -> ``Cropped``: scaled (area down, cubic up) until it covers ``size`` (pixels: an int for a
    square, or (height, width) of an aspect-ratio bucket), then a centre or random crop of that size, then a
    left-right flip with probability 0.5 when ``flip``."""
    height, width = pixels.shape[:2]
    size_h, size_w = (size, size) if np.isscalar(size) else (int(size[0]), int(size[1]))
    scale = max(size_h / height, size_w / width)
    new_w, new_h = max(size_w, round(width * scale)), max(size_h, round(height * scale))
    if (new_w, new_h) != (width, height):
        interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
        pixels = cv2.resize(pixels, (new_w, new_h), interpolation=interpolation)
    if crop == "random":
        top, left = int(rng.integers(0, new_h - size_h + 1)), int(rng.integers(0, new_w - size_w + 1))
    else:
        top, left = (new_h - size_h) // 2, (new_w - size_w) // 2
    pixels = pixels[top : top + size_h, left : left + size_w]
    if flip and rng.random() < 0.5:
        pixels, left = pixels[:, ::-1], new_w - size_w - left
    return Cropped(np.ascontiguousarray(pixels), np.array([height, width, top, left, size_h, size_w], np.int64))


def draw_edge_augmentation(rng: np.random.Generator, params: EdgeParams) -> np.ndarray:
    """The draws ``preprocessors.training_edges`` makes, in its order, for Canny on the accelerator:
    float32 [low, high, blur_sigma (0 = none), downscale factor (0 = none)]."""
    low = float(rng.uniform(params.low_min, params.low_max))
    high = low * float(rng.uniform(params.ratio_min, params.ratio_max))
    sigma = float(rng.uniform(params.blur_sigma_min, params.blur_sigma_max)) if rng.random() < params.blur_prob else 0.0
    factor = (float(rng.uniform(params.downscale_min, params.downscale_max)) if rng.random() < params.downscale_prob
              else 0.0)
    return np.array([low, high, sigma, factor], dtype=np.float32)


@dataclass
class SampleSpec:
    """How raw records become training samples."""

    resolution: int = 512
    crop: str = "center"
    random_flip: bool = False
    caption_dropout: float = 0.5
    strokes: StrokeParams = StrokeParams()
    edges: EdgeParams = EdgeParams()
    hint_on_gpu: bool = False
    fill_probability: float = 0.0  # chance of a sample's strokes filled between its edges (``training_hint``)
    fill_gap: int = 0  # the fill's gap in pixels (0 = ``preprocessors.default_gap`` of the resolution)
    area_labels: bool = False  # each item also carries "areas", its strokes' claimed areas (the area colour loss)
    seed: int = 0
    stroke_density_start: float = 1.0  # stroke count multiplier at step 0 ...
    stroke_density_steps: int = 0  # ... falling linearly to 1 over these optimiser steps (0 = constant 1)
    accumulation: int = 1  # micro-batches per optimiser step (turns a micro-batch number into a step)
    sizes: np.ndarray | None = None  # Nx2 (height, width) of each dataset index's aspect-ratio bucket; None: square

    def size_of(self, index: int):
        """The training size of dataset ``index``: its bucket's (height, width), or the square resolution."""
        return self.resolution if self.sizes is None else tuple(self.sizes[index])

    def strokes_at(self, micro_batch: int) -> StrokeParams:
        """The stroke parameters of a sample in this process's ``micro_batch``-th micro-batch (dense to sparse)."""
        if self.stroke_density_steps <= 0:
            return self.strokes
        progress = min(1.0, (micro_batch // self.accumulation) / self.stroke_density_steps)
        return self.strokes.denser(self.stroke_density_start + (1.0 - self.stroke_density_start) * progress)

    @property
    def min_side(self) -> int:
        """Images whose short side is below half the resolution are skipped (too blurry when enlarged)."""
        return max(2, self.resolution // 2)


class TrainDataset(torch.utils.data.Dataset):
    """Map-style dataset indexed by (epoch, index, micro-batch number) keys (see ``sampler.EpochBatchSampler``;
    an (epoch, index) key is micro-batch 0).

    An item is a dict:
      pixels  3xHxW float32 in [-1, 1] (the cropped target; H, W the resolution or the index's bucket),
      hint    5xHxW float32 in [0, 1] (or, with hint_on_gpu, strokes 4xHxW + edge_aug 4 floats),
      areas   HxW int32, with area_labels: 1 .. K the areas the strokes claim (``preprocessors.fill.fill_and_areas``),
      caption str ('' when dropped or missing), missing_caption bool, index int,
      size_ids  6 int64 (``Cropped.size_ids``: SDXL's size conditioning);
    or {"skip": reason, "index": i} when the record cannot be used.
    """

    def __init__(self, source, spec: SampleSpec):
        self.source, self.spec = source, spec

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, key):
        epoch, index, *micro_batch = key
        spec = self.spec
        strokes = spec.strokes_at(micro_batch[0] if micro_batch else 0)
        try:
            image, caption = self.source.load(index)
            pixels = decode_rgb(image, spec.min_side)
        except SampleSkipped as skipped:
            return {"skip": skipped.reason, "index": index}
        rng = sample_rng(spec.seed, epoch, index)
        pixels, size_ids = resize_and_crop(pixels, spec.size_of(index), rng, spec.crop, spec.random_flip)
        caption = (caption or "").strip()
        item = {"missing_caption": not caption, "index": index, "size_ids": torch.from_numpy(size_ids)}
        item["caption"] = "" if rng.random() < spec.caption_dropout else caption
        if spec.hint_on_gpu:
            item["edge_aug"] = torch.from_numpy(draw_edge_augmentation(rng, spec.edges))
            item["strokes"] = torch.from_numpy(np.moveaxis(random_strokes(pixels, rng, strokes), 2, 0).copy())
        elif spec.area_labels:
            hint, areas = training_hint(pixels, rng, strokes, spec.edges, spec.fill_probability, spec.fill_gap,
                                        with_areas=True)
            item["hint"], item["areas"] = torch.from_numpy(hint), torch.from_numpy(areas)
        else:
            item["hint"] = torch.from_numpy(training_hint(pixels, rng, strokes, spec.edges, spec.fill_probability,
                                                          spec.fill_gap))
        item["pixels"] = torch.from_numpy(pixels).permute(2, 0, 1).float().div(127.5).sub(1.0)
        return item


def collate(items: list[dict]) -> dict:
    """Stack the usable items; count the skipped ones by reason.

    Returns tensors stacked on dim 0 (pixels, hint (and areas) or strokes/edge_aug, index), lists (caption), and
    ``skipped`` {reason: count}, ``missing_captions`` int, ``size`` (usable samples; may be 0).
    """
    skipped, usable = {}, []
    for item in items:
        if "skip" in item:
            skipped[item["skip"]] = skipped.get(item["skip"], 0) + 1
        else:
            usable.append(item)
    batch = {"skipped": skipped, "size": len(usable), "missing_captions": sum(i["missing_caption"] for i in usable)}
    if usable:
        batch["caption"] = [i["caption"] for i in usable]
        batch["index"] = torch.tensor([i["index"] for i in usable])
        for key in ("pixels", "hint", "areas", "strokes", "edge_aug", "size_ids"):
            if key in usable[0]:
                batch[key] = torch.stack([i[key] for i in usable])
    return batch

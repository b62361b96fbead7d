"""Helpers for the trainer tests: pictures, small image folders, a tiny-run config.

Import them into a test module (``from tests.train_fixtures import tiny_config, write_folder``); the fixtures
built on them (``tiny_base``, ``image_folder``) are in conftest.py, where pytest finds them without an import.
"""
from __future__ import annotations

import numpy as np
from PIL import Image


def colourful(seed: int, height: int = 40, width: int = 48) -> np.ndarray:
    """An HxWx3 uint8 picture with edges and colours: random coloured rectangles on a gradient."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    pixels = np.stack([x * 255 // width, y * 255 // height, np.full_like(x, 128)], axis=2).astype(np.uint8)
    for _ in range(4):
        top, left = rng.integers(0, height - 8), rng.integers(0, width - 8)
        pixels[top : top + rng.integers(4, 12), left : left + rng.integers(4, 12)] = rng.integers(0, 256, 3)
    return pixels


def write_folder(folder, count: int = 8, captions: bool = True, size=(40, 48)):
    """``count`` PNG pictures (with sidecar captions unless ``captions`` is False) in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        Image.fromarray(colourful(i, *size)).save(folder / f"img{i:02d}.png")
        if captions:
            (folder / f"img{i:02d}.txt").write_text(f"picture number {i}", encoding="utf-8")
    return folder


def tiny_config(base, data, output, **overrides):
    """A TrainConfig for a few-second CPU run at 32x32 (deterministic: fp32 on any device; no workers, no tracker)."""
    from training.config import TrainConfig

    values = dict(
        base_model=str(base), data=str(data), output_dir=str(output), allow_non_sd15=True, resolution=32,
        max_train_steps=4, train_batch_size=2, gradient_accumulation_steps=1, learning_rate=1e-4, num_workers=0,
        checkpointing_steps=2, validation_steps=0, num_validation_samples=1, validation_inference_steps=2,
        report_to="none", export_dtype="fp32", mixed_precision="no",
        strokes={"length_min": 10, "length_max": 40, "thickness": (0, 1)},
    )
    values.update(overrides)
    return TrainConfig(**values)

"""Validation: generate images from (line drawing, strokes, prompt) triples, grid them, measure them.

Two numbers follow training (the ControlNet's "sudden convergence" shows as a jump in both), both from
``metrics``: the stroke colour error (0-255 RGB distance under the strokes; lower is better) and the edge F1
of Canny of the result against the hint's edges within ``EDGE_TOLERANCE`` pixels (higher is better).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from preprocessors import (
    DEFAULT_CANNY,
    canny,
    load_image,
    make_hint,
    resize_strokes,
    to_model_polarity,
    training_hint,
    user_strokes,
)
from preprocessors.contract import EDGE_CHANNEL

from .data import SampleSkipped, decode_rgb, sample_rng
from .data.samples import resize_and_crop
from .metrics import edge_f1, stroke_colour_error
from .stroke_use import stroke_use_on_images

EDGE_TOLERANCE = 2  # pixels (city-block) within which a result's edge matches the hint's
VALIDATION_EPOCH = 2**31  # the "epoch" of held-out samples' strokes: one no training epoch reaches


@dataclass
class ValidationSample:
    """One triple: hint 5xHxW float32 (white edges on black, as the library builds it), prompt, name for the
    grid; ``pixels``: the target image HxWx3 uint8 when known (held-out training images; it enables
    ``stroke_use``)."""

    hint: np.ndarray
    prompt: str
    name: str
    pixels: np.ndarray | None = None


def held_out_samples(source, indices, spec) -> tuple[list[ValidationSample], dict[str, int]]:
    """(triples, skipped): triples from training-data records with procedural strokes (fixed seed, centre crop);
    a record that cannot be read (``SampleSkipped``: unreadable, missing, too small, a dead link) is left out and
    counted in ``skipped`` by reason, as training skips it."""
    samples, skipped = [], {}
    for index in indices:
        try:
            image, caption = source.load(int(index))
            pixels = resize_and_crop(decode_rgb(image, spec.min_side), spec.resolution, None, "center", False).pixels
        except SampleSkipped as reason:
            skipped[reason.reason] = skipped.get(reason.reason, 0) + 1
            continue
        rng = sample_rng(spec.seed, VALIDATION_EPOCH, int(index))
        hint = training_hint(pixels, rng, spec.strokes, spec.edges, spec.fill_probability, spec.fill_gap)
        samples.append(ValidationSample(hint, (caption or "").strip(), f"data-{index}", pixels))
    return samples, skipped


def recommended_canny(edges) -> tuple[float, float]:
    """(low, high) Canny thresholds for inference with a model trained on ``edges`` (``EdgeParams``).

    The hosts' default (``DEFAULT_CANNY``), moved into the training ranges: low clamped to [low_min, low_max],
    high/low to [ratio_min, ratio_max]. So the default ranges give the hosts' default and fixed thresholds
    (``EdgeParams.fixed(low, high)``) give exactly those.
    """
    low = min(max(float(DEFAULT_CANNY.low), edges.low_min), edges.low_max)
    ratio = min(max(DEFAULT_CANNY.high / DEFAULT_CANNY.low, edges.ratio_min), edges.ratio_max)
    return float(low), round(float(low * ratio), 4)


def user_samples(folder, resolution: int, canny_thresholds=(DEFAULT_CANNY.low, DEFAULT_CANNY.high)
                 ) -> list[ValidationSample]:
    """Triples from ``folder``: NAME.png line drawing, NAME.strokes.png transparent strokes (optional),
    NAME.txt prompt (optional). The drawing is centre-cropped to ``resolution`` and its edges found by
    Canny with ``canny_thresholds`` (low, high); the stroke layer is first stretched to the drawing's size
    (the contract's rule for a layer of another size), then cut the same way."""
    folder = Path(folder)
    drawings = sorted(p for p in folder.glob("*.png") if not p.name.endswith(".strokes.png"))
    if not drawings:
        raise FileNotFoundError(f"no NAME.png line drawings in validation folder {str(folder)!r}")
    samples = []
    for drawing in drawings:
        pixels = decode_rgb(drawing)
        lineart = resize_and_crop(pixels, resolution, None, "center", False).pixels
        strokes_path = drawing.with_name(drawing.stem + ".strokes.png")
        strokes = _stroke_layer(strokes_path, pixels.shape[:2], resolution) if strokes_path.is_file() else None
        prompt_path = drawing.with_suffix(".txt")
        prompt = prompt_path.read_text(encoding="utf-8").strip() if prompt_path.is_file() else ""
        hint = make_hint(canny(lineart, *canny_thresholds), strokes)
        samples.append(ValidationSample(hint, prompt, drawing.stem))
    return samples


def _stroke_layer(path: Path, drawing_size: tuple[int, int], resolution: int) -> np.ndarray:
    """The premultiplied stroke layer of ``path`` (an RGBA PNG) stretched to ``drawing_size`` (height,
    width) by ``resize_strokes``, then resized and centre-cropped as the drawing: resolution^2 x 4 float32."""
    layer = load_image(path)
    if layer.ndim != 3 or layer.shape[2] != 4:
        raise ValueError(f"{path} must be a transparent (RGBA) PNG whose alpha marks the strokes")
    layer = resize_and_crop(resize_strokes(user_strokes(layer), drawing_size), resolution, None, "center", False).pixels
    layer = np.clip(layer, 0.0, 1.0)  # the drawing's cubic enlargement can overshoot
    layer[..., :3] = np.minimum(layer[..., :3], layer[..., 3:])  # premultiplied: RGB <= A
    return layer


@torch.no_grad()
def generate(controlnet, base, hints: torch.Tensor, prompts: list[str], steps: int, guidance: float, seed: int,
             autocast) -> np.ndarray:
    """Images BxHxWx3 uint8 for hints Bx5xHxW in [0, 1], through ``model.inference.controlnet_pipeline``
    (diffusers' ControlNet pipeline with the base's parts and a DDIM schedule)."""
    from diffusers import DDIMScheduler

    from model.inference import controlnet_pipeline

    pipe = controlnet_pipeline(base.pipeline_parts(DDIMScheduler.from_config(base.noise_scheduler.config)), controlnet)
    pipe.set_progress_bar_config(disable=True)
    generator = torch.Generator(device="cpu").manual_seed(seed)
    with autocast():
        images = pipe(prompt=prompts, image=hints.to(controlnet.dtype), height=hints.shape[2], width=hints.shape[3],
                      num_inference_steps=steps, guidance_scale=guidance, generator=generator, output_type="np").images
    return (np.clip(images, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def make_grid(samples: list[ValidationSample], results: np.ndarray) -> np.ndarray:
    """Rows of (drawing | strokes | result), each HxW: HxW*3 per row, uint8 RGB."""
    rows = []
    for sample, result in zip(samples, results, strict=True):
        dark_lines = ((1.0 - sample.hint[EDGE_CHANNEL]) * 255).astype(np.uint8)  # on white
        drawing = np.repeat(dark_lines[..., None], 3, axis=2)
        alpha = sample.hint[4][..., None]
        strokes = np.moveaxis(sample.hint[1:4], 0, 2) + (1.0 - alpha)  # strokes over white
        strokes = (np.clip(strokes, 0, 1) * 255 + 0.5).astype(np.uint8)
        rows.append(np.concatenate([drawing, strokes, result], axis=1))
    return np.concatenate(rows, axis=0)


def run_validation(controlnet, base, samples, config, step: int, device, autocast) -> dict:
    """Generate, write ``OUTPUT_DIR/validation/step-NNNNNNN.png`` and return the metrics and the grid (and,
    for samples with target pixels, ``stroke_use``). autocast: a callable returning a fresh autocast context."""
    hints = to_model_polarity(torch.from_numpy(np.stack([s.hint for s in samples])).to(device), config.polarity)
    results = generate(controlnet, base, hints, [s.prompt for s in samples], config.validation_inference_steps,
                       config.validation_guidance_scale, config.seed, autocast)
    grid = make_grid(samples, results)
    path = Path(config.output_dir) / "validation" / f"step-{step:07d}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(grid).save(path)
    colour = [stroke_colour_error(r, s.hint) for r, s in zip(results, samples, strict=True)]
    colour = [c for c in colour if np.isfinite(c)]
    metrics = {
        "path": path,
        "grid": grid,
        "stroke_colour_error": float(np.mean(colour)) if colour else float("nan"),
        "edge_f1": float(np.mean([edge_f1(canny(r), s.hint[EDGE_CHANNEL], EDGE_TOLERANCE)
                                  for r, s in zip(results, samples, strict=True)])),
    }
    if all(s.pixels is not None for s in samples):
        metrics["stroke_use"] = held_out_stroke_use(controlnet, base, samples, hints, config, autocast)
    return metrics


def held_out_stroke_use(controlnet, base, samples, hints: torch.Tensor, config, autocast) -> list[float]:
    """``stroke_use.stroke_use_on_images`` on validation samples that carry their target pixels; ``hints``: theirs,
    in the model's polarity."""
    pixels = torch.from_numpy(np.stack([s.pixels for s in samples])).permute(0, 3, 1, 2).float() / 127.5 - 1.0
    return stroke_use_on_images(controlnet, base, pixels, [s.prompt for s in samples], hints, seed=config.seed,
                                middle_block_only=config.middle_block_only, autocast=autocast)

"""Colour held-out drawings with each system and measure the results against the truth.

A held-out case is a world sample whose seed no training step sees, with strokes sampled from the
ground-truth image by the training generator (crisp: no blur). Systems:
- ``base``: the toy base through the ControlNet pipeline at strength 0 (no control; the floor);
- ``ours``: the trained ControlNet read back from its exported ``.safetensors`` by ``model.load_checkpoint``
  and run by ``model.inference.colorize`` with the line drawing and the strokes;
- ``flood_fill``: the classical colouring of the closed areas of the drawing from the same strokes.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch
from diffusers import DDIMScheduler, StableDiffusionPipeline

from model import load_checkpoint
from model.inference import build_hint, colorize, edge_polarity_of
from preprocessors import StrokeParams, canny, random_strokes, to_model_polarity
from training.base_model import BaseModel
from training.metrics import edge_f1
from training.stroke_use import stroke_use_on_images

from .flood_fill import flood_fill
from .metrics import EDGE_TOLERANCE, region_error, stroke_error
from .world import Sample, sample

HELD_OUT_SEED = 9 * 10**6  # far from every seed range used for training (benchmarks.toyworld.base_model, data)
METRICS = ("region_error", "stroke_error", "edge_f1")


@dataclass
class Case:
    """One held-out drawing: the world sample and its strokes (HxWx4 float32 premultiplied, A in {0, 1})."""

    truth: Sample
    strokes: np.ndarray


def eval_stroke_params(image_size: int) -> StrokeParams:
    """What a person might paint: 3-6 strokes, 5 px wide at 128 px, colours taken from the truth."""
    scale = image_size / 128
    return StrokeParams(count_min=3, count_max=6, length_min=int(40 * scale), length_max=int(120 * scale),
                        thickness=(max(1, round(2 * scale)),), colour="pixel", blur_prob=0.0)


def held_out_cases(count: int, image_size: int) -> list[Case]:
    """``count`` deterministic held-out cases."""
    params = eval_stroke_params(image_size)
    cases = []
    for index in range(count):
        truth = sample(HELD_OUT_SEED + index, image_size)
        strokes = random_strokes(truth.image, np.random.default_rng(HELD_OUT_SEED + index), params)
        cases.append(Case(truth, strokes))
    return cases


def measure(result: np.ndarray, case: Case) -> dict:
    """The three metrics of one coloured result (HxWx3 uint8) against its case."""
    truth = case.truth
    return {
        "region_error": region_error(result, truth.regions, truth.colours, case.strokes),
        "stroke_error": stroke_error(result, case.strokes),
        "edge_f1": edge_f1(canny(result), canny(truth.lineart), EDGE_TOLERANCE),
    }


def mean_metrics(rows: list[dict]) -> dict:
    """Mean of each metric over cases, NaNs (cases without strokes) left out."""
    return {name: float(np.nanmean([row[name] for row in rows])) for name in METRICS}


def base_parts(base_dir) -> dict:
    """The base's parts with a DDIM schedule for sampling (the folder keeps SD's DDPM training schedule)."""
    pipeline = StableDiffusionPipeline.from_pretrained(str(base_dir), safety_checker=None,
                                                       requires_safety_checker=False,
                                                       local_files_only=True)
    parts = dict(pipeline.components)
    parts["scheduler"] = DDIMScheduler.from_config(pipeline.scheduler.config)
    return parts


def learned_results(parts: dict, controlnet, cases: list[Case], strength: float, steps: int, seed: int,
                    stroke_guidance: float = 1.0, fill: bool | None = None, fill_gap: int = 0) -> list:
    """Results (HxWx3 uint8) of the ControlNet pipeline on ``cases`` at ``strength`` (0 = the base alone).
    The base is unconditional (empty prompts), so classifier-free guidance has nothing of the prompt's to
    amplify: guidance 1, unless ``stroke_guidance`` > 1, which is then the guidance scale with the strokes
    on its positive side only (``colorize(stroke_guidance=True)``) and amplifies the strokes alone.
    fill / fill_gap: ``colorize``'s (None = as the model was trained); a fill the model was not trained with is
    what is measured here, so its warning is not repeated for every case."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*fill", category=UserWarning)
        return [np.asarray(colorize(parts, controlnet, case.truth.lineart, case.strokes, steps=steps,
                                    guidance=stroke_guidance, seed=seed + index, strength=strength,
                                    stroke_guidance=stroke_guidance > 1, fill=fill, fill_gap=fill_gap))
                for index, case in enumerate(cases)]


def flood_fill_results(cases: list[Case]) -> list:
    return [flood_fill(case.truth.lineart, case.strokes) for case in cases]


def load_exported(path):
    """Our exported checkpoint through the loader the hosts' users get (toy widths are not SD 1.5's)."""
    controlnet, _ = load_checkpoint(path, family=None, dtype=torch.float32)
    return controlnet


@torch.no_grad()
def vae_reconstructions(vae, cases: list[Case]) -> list:
    """The truth through the base's VAE (encode, decode): the best any model of this base can do."""
    images = torch.from_numpy(np.stack([case.truth.image for case in cases])).permute(0, 3, 1, 2).float() / 127.5 - 1
    decoded = vae.decode(vae.encode(images.to(vae.device, vae.dtype)).latent_dist.mode()).sample
    return list(((decoded.float().clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).cpu().numpy())


def stroke_use(parts: dict, controlnet, cases: list[Case], seed: int = 0) -> list[float]:
    """``training.stroke_use.stroke_use_on_images`` on the held-out cases: per tenth of the timesteps, the
    denoising loss without the strokes minus with them (the truth image is the target, the prompt empty)."""
    unet = parts["unet"]
    images = torch.from_numpy(np.stack([case.truth.image for case in cases])).permute(0, 3, 1, 2).float() / 127.5 - 1
    hints = to_model_polarity(torch.cat([build_hint(case.truth.lineart, case.strokes) for case in cases]),
                              edge_polarity_of(controlnet))
    return stroke_use_on_images(controlnet, BaseModel.from_parts(parts), images, [""] * len(cases),
                                hints.to(unet.device), seed=seed)


def without_strokes(cases: list[Case]) -> list[Case]:
    """The same drawings with empty stroke layers (scored against the original strokes)."""
    return [Case(case.truth, np.zeros_like(case.strokes)) for case in cases]


def scores_and_effect(images: list, bare: list, cases) -> dict:
    """Mean metrics of ``images`` on ``cases`` and the stroke effect: region error of ``bare`` (the same model
    given the drawings without strokes) minus that of ``images``."""
    scores = mean_metrics([measure(r, c) for r, c in zip(images, cases, strict=True)])
    without = mean_metrics([measure(r, c) for r, c in zip(bare, cases, strict=True)])
    return {**scores, "stroke_effect": without["region_error"] - scores["region_error"]}


def results_with_and_without_strokes(parts: dict, controlnet, cases, strength: float, steps: int,
                                     seed: int = 0) -> tuple[list, list]:
    """The model's results on ``cases`` at ``strength``, then on the same drawings without strokes."""
    return (learned_results(parts, controlnet, cases, strength, steps, seed),
            learned_results(parts, controlnet, without_strokes(cases), strength, steps, seed))


def evaluate_systems(parts: dict, controlnet, cases: list[Case], steps: int, seed: int = 0) -> tuple[dict, dict]:
    """({system: mean metrics}, {system: results}) on ``cases`` for base, ours (``controlnet``, as
    ``load_exported`` reads it) and flood fill, plus two diagnostics: ours given the drawing without strokes
    (does it use the strokes?) and the VAE's reconstruction of the truth (the ceiling of any model on this base)."""
    ours, bare = results_with_and_without_strokes(parts, controlnet, cases, 1.0, steps, seed)
    results = {
        "base": learned_results(parts, controlnet, cases, 0.0, steps, seed),
        "ours": ours,
        "flood_fill": flood_fill_results(cases),
        "ours_without_strokes": bare,
        "vae_reconstruction": vae_reconstructions(parts["vae"], cases),
    }
    scores = {name: mean_metrics([measure(r, c) for r, c in zip(images, cases, strict=True)])
              for name, images in results.items()}
    return scores, results

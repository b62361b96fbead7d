"""Where a ControlNet uses the strokes: its denoising loss without strokes minus with strokes, per tenth
of the timestep range.

A model that ignores the stroke channels scores 0 in every tenth; one that takes colour from them
scores above 0 where the noisy latent does not already show the colour (high noise). The same noise
and timesteps are used with and without strokes, so the difference is the strokes' alone.
"""
from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F

from model import controlnet_residuals
from preprocessors.contract import STROKE_CHANNELS

BINS = 10


@torch.no_grad()
def stroke_use_by_timestep(controlnet, unet, scheduler, latents: torch.Tensor, hints: torch.Tensor,
                           text: torch.Tensor, seed: int = 0, repeats: int = 2, middle_block_only: bool | None = None,
                           autocast=None) -> list[float]:
    """``BINS`` floats: mean epsilon/v-loss without strokes minus with strokes, tenth k of [0, T) first.

    latents: Bx4xhxw scaled clean latents of the target images; hints: Bx5xHxW in the model's polarity;
    text: Bx77xD prompt embeddings. Each tenth draws ``repeats`` timesteps per sample uniformly within it.
    autocast: a callable returning a fresh autocast context (``accelerator.autocast``); None = none.
    """
    device = latents.device
    generator = torch.Generator(device=device).manual_seed(seed)
    no_strokes = hints.clone()
    no_strokes[:, STROKE_CHANNELS] = 0
    steps = scheduler.config.num_train_timesteps
    width = steps / BINS
    autocast = autocast or contextlib.nullcontext
    differences = []
    for k in range(BINS):
        total = 0.0
        for _ in range(repeats):
            timesteps = (k * width + torch.rand(len(latents), generator=generator, device=device) * width).long()
            noise = torch.randn(latents.shape, generator=generator, device=device)
            noisy = scheduler.add_noise(latents.float(), noise, timesteps.clamp(0, steps - 1)).to(unet.dtype)
            target = (scheduler.get_velocity(latents.float(), noise, timesteps)
                      if scheduler.config.prediction_type == "v_prediction" else noise)
            losses = []
            for hint in (no_strokes, hints):
                with autocast():
                    down, mid = controlnet_residuals(controlnet, noisy, timesteps, text, hint.to(controlnet.dtype),
                                                     middle_only=middle_block_only)
                    prediction = unet(noisy, timesteps, encoder_hidden_states=text,
                                      down_block_additional_residuals=[d.to(unet.dtype) for d in down],
                                      mid_block_additional_residual=mid.to(unet.dtype)).sample
                losses.append(F.mse_loss(prediction.float(), target.float()).item())
            total += losses[0] - losses[1]
        differences.append(total / repeats)
    return differences

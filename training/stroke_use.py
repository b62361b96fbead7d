"""Where a ControlNet uses the strokes: its denoising loss without strokes minus with strokes, per tenth
of the timestep range, in x0 units.

A model that ignores the stroke channels scores 0 in every tenth; one that takes colour from them
scores above 0 where the noisy latent does not already show the colour (high noise). The same noise
and timesteps are used with and without strokes, so the difference is the strokes' alone. Each sample's
difference is divided by the weight its loss gives an x0 error (SNR for epsilon, SNR + 1 for v), so a
tenth reads as the mean squared error of the clean latent (per element) that the strokes remove: at high
noise an epsilon loss shrinks that by ~200x and would hide it.
"""
from __future__ import annotations

import contextlib

import torch

from model import controlnet_residuals
from preprocessors import strokes_removed

from .encoders import LatentEncoder, TextEmbedder
from .recipe import denoising_target, x0_error_weight

BINS = 10


@torch.no_grad()
def stroke_use_by_timestep(controlnet, unet, scheduler, latents: torch.Tensor, hints: torch.Tensor,
                           text: dict, seed: int = 0, repeats: int = 2, middle_block_only: bool | None = None,
                           autocast=None) -> list[float]:
    """``BINS`` floats: mean x0 error without strokes minus with strokes (module docstring), tenth k of [0, T)
    first.

    latents: Bx4xhxw scaled clean latents of the target images; hints: Bx5xHxW in the model's polarity;
    text: the prompts' UNet keyword arguments (``TextCondition.unet_kwargs``). Each tenth draws ``repeats``
    timesteps per sample uniformly within it.
    autocast: a callable returning a fresh autocast context (``accelerator.autocast``); None = none.
    """
    device = latents.device
    generator = torch.Generator(device=device).manual_seed(seed)
    no_strokes = strokes_removed(hints)
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
            target = denoising_target(scheduler, latents.float(), noise, timesteps)
            losses = []
            for hint in (no_strokes, hints):
                with autocast():
                    down, mid = controlnet_residuals(controlnet, noisy, timesteps, hint=hint.to(controlnet.dtype),
                                                     middle_only=middle_block_only, **text)
                    prediction = unet(noisy, timesteps, **text,
                                      down_block_additional_residuals=[d.to(unet.dtype) for d in down],
                                      mid_block_additional_residual=mid.to(unet.dtype)).sample
                losses.append(((prediction.float() - target.float()) ** 2).mean(dim=(1, 2, 3)))
            x0_weight = x0_error_weight(scheduler.alphas_cumprod, timesteps, scheduler.config.prediction_type)
            total += float(((losses[0] - losses[1]) / x0_weight).mean())
        differences.append(total / repeats)
    return differences


def stroke_use_on_images(controlnet, base, pixels: torch.Tensor, prompts: list[str], hints: torch.Tensor,
                         seed: int = 0, repeats: int = 2, middle_block_only: bool | None = None,
                         autocast=None) -> list[float]:
    """``stroke_use_by_timestep`` with target images and prompts: base: a ``training.base_model.BaseModel`` (its
    UNet, VAE, text encoders and training schedule); pixels Bx3xHxW in [-1, 1] (the truth), encoded by the VAE
    (distribution means, shifted and scaled as in training); prompts B strings; hints Bx5xHxW in the model's
    polarity on the device the models are on. SDXL's size conditioning is the uncropped image's."""
    device, unet = hints.device, base.unet
    latents = LatentEncoder(base.vae, device, unet.dtype).mode(pixels)
    height, width = pixels.shape[-2:]
    size_ids = torch.tensor([[height, width, 0, 0, height, width]] * len(pixels), device=device, dtype=unet.dtype)
    text = TextEmbedder(base.text_encoders, device, unet.dtype)(prompts).unet_kwargs(size_ids)
    return stroke_use_by_timestep(controlnet, unet, base.noise_scheduler, latents, hints, text, seed=seed,
                                  repeats=repeats, middle_block_only=middle_block_only, autocast=autocast)

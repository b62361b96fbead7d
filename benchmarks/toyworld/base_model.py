"""Pretrain a tiny latent diffusion base in the toy world: a small VAE, then a small UNet on its latents.

The base has SD 1.5's structure at a fraction of its size: an ``AutoencoderKL`` with 8x downsampling
and 4 latent channels, a ``UNet2DConditionModel`` with cross-attention, the tiny CLIP text encoder and
tokenizer of ``training.tiny_base`` (made in code), SD's DDPM noise schedule. It is trained as an
ordinary text-to-image model whose captions are all empty (unconditional) and saved as a diffusers
folder with ``model_index.json`` that ``training/train.py`` and ``model.inference`` load like SD 1.5.
"""
from __future__ import annotations

import logging
import pathlib
import tempfile
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import AutoencoderKL, DDPMScheduler, StableDiffusionPipeline, UNet2DConditionModel

from training.tiny_base import TINY_CROSS_ATTENTION_DIM, tiny_components

from .worlds import sampler

logger = logging.getLogger(__name__)
# Seeds of the world's samples by use, so that no held-out drawing is ever trained on.
VAE_SEEDS = (10**6, 2 * 10**6)
UNET_SEEDS = (2 * 10**6, 3 * 10**6)
SCALE_SEEDS = (3 * 10**6, 3 * 10**6 + 64)


@dataclass
class BaseSettings:
    """How long and on what each part trains. ``vae_crop``: the VAE is fully convolutional, so it trains
    on random crops of this size (pixels) of full-size images; 0 = whole images. The UNet trains on the
    latents of ``unet_images`` samples, encoded once."""

    image_size: int = 128
    vae_steps: int = 3000
    vae_batch: int = 8
    vae_crop: int = 64
    vae_lr: float = 2e-3
    vae_norm_groups: int = 4
    unet_images: int = 4096
    unet_steps: int = 1500
    unet_batch: int = 32
    unet_lr: float = 1e-3
    seed: int = 0
    world: str = "v1"  # benchmarks.toyworld.worlds


def toy_vae(image_size: int, norm_groups: int = 4) -> AutoencoderKL:
    """4 latent channels at 1/8 of the image size, as SD's VAE. ``norm_groups``: GroupNorm groups; 16 groups of
    one channel each (instance norm) erase a flat area's colour at every norm, the reason the first toy VAE lost
    11.5 dE of region colour; groups of 4+ channels keep it in the pattern across the group."""
    return AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(16, 32, 64, 64), layers_per_block=1,
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
        norm_num_groups=norm_groups, sample_size=image_size,
    )


def toy_unet(latent_size: int) -> UNet2DConditionModel:
    """A three-level UNet (64, 128, 128 channels, cross-attention in the lower two), 6.5 M parameters."""
    return UNet2DConditionModel(
        sample_size=latent_size, in_channels=4, out_channels=4, layers_per_block=1,
        block_out_channels=(64, 128, 128), norm_num_groups=16, cross_attention_dim=TINY_CROSS_ATTENTION_DIM,
        attention_head_dim=8,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
    )


def noise_schedule() -> DDPMScheduler:
    """SD 1.5's training schedule (scaled-linear betas 0.00085-0.012 over 1000 steps, epsilon prediction)."""
    return DDPMScheduler(num_train_timesteps=1000, beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012,
                         steps_offset=1, clip_sample=False)


def image_batch(seeds, size: int, crop: int = 0, rng: np.random.Generator | None = None,
                world: str = "v1") -> torch.Tensor:
    """Bx3xHxW float in [-1, 1]: ``world``'s samples for ``seeds``, optionally one random ``crop``-pixel window."""
    draw = sampler(world)
    images = torch.from_numpy(np.stack([draw(int(seed), size).image for seed in seeds]))
    images = images.permute(0, 3, 1, 2).float() / 127.5 - 1.0
    if crop and crop < size:
        top, left = (rng or np.random.default_rng()).integers(0, size - crop + 1, 2)
        images = images[:, :, top:top + crop, left:left + crop]
    return images


def _optimise(loss: torch.Tensor, optimiser, schedule, name: str, step: int, steps: int) -> None:
    """One optimiser and LR-schedule step on ``loss``, logged every 100 steps and at the last."""
    optimiser.zero_grad(set_to_none=True)
    loss.backward()
    optimiser.step()
    schedule.step()
    if step % 100 == 0 or step == steps - 1:
        logger.info("%s step %d/%d loss %.4f", name, step + 1, steps, loss.item())


def train_vae(vae: AutoencoderKL, settings: BaseSettings, on_step=None) -> float:
    """Reconstruction (L1 + MSE) with a small KL weight on random crops. Returns the last loss. ``on_step(step,
    vae)`` is called after each optimiser step (1-based; the VAE in training mode)."""
    optimiser = torch.optim.AdamW(vae.parameters(), lr=settings.vae_lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, settings.vae_steps)
    rng = np.random.default_rng(settings.seed)
    vae.train()
    for step in range(settings.vae_steps):
        images = image_batch(rng.integers(*VAE_SEEDS, settings.vae_batch), settings.image_size, settings.vae_crop, rng,
                             settings.world)
        posterior = vae.encode(images).latent_dist
        reconstruction = vae.decode(posterior.sample()).sample
        loss = F.l1_loss(reconstruction, images) + F.mse_loss(reconstruction, images) + 1e-6 * posterior.kl().mean()
        _optimise(loss, optimiser, schedule, "vae", step, settings.vae_steps)
        if on_step is not None:
            on_step(step + 1, vae)
    vae.eval()
    return float(loss.item())


@torch.no_grad()
def latent_scale(vae: AutoencoderKL, size: int, world: str = "v1") -> float:
    """The scaling factor that gives the latents unit variance, as SD's 0.18215 does for its VAE."""
    latents = vae.encode(image_batch(range(*SCALE_SEEDS), size, world=world)).latent_dist.mode()
    return float(1.0 / latents.std())


@torch.no_grad()
def latent_moments(vae: AutoencoderKL, settings: BaseSettings, chunk: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean, std) of the VAE posterior of ``unet_images`` world samples, encoded once (the VAE is frozen)."""
    seeds = np.arange(UNET_SEEDS[0], UNET_SEEDS[0] + settings.unet_images)
    means, stds = [], []
    for start in range(0, len(seeds), chunk):
        images = image_batch(seeds[start:start + chunk], settings.image_size, world=settings.world)
        posterior = vae.encode(images).latent_dist
        means.append(posterior.mean)
        stds.append(posterior.std)
    return torch.cat(means), torch.cat(stds)


def train_unet(unet: UNet2DConditionModel, vae: AutoencoderKL, empty_prompt: torch.Tensor,
               settings: BaseSettings) -> float:
    """Epsilon-prediction denoising on scaled VAE latents, every caption empty. Returns the last loss."""
    scheduler = noise_schedule()
    optimiser = torch.optim.AdamW(unet.parameters(), lr=settings.unet_lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, settings.unet_steps)
    generator = torch.Generator().manual_seed(settings.seed)
    means, stds = latent_moments(vae, settings)
    unet.train()
    for step in range(settings.unet_steps):
        picks = torch.randint(0, len(means), (settings.unet_batch,), generator=generator)
        latents = means[picks] + stds[picks] * torch.randn(means[picks].shape, generator=generator)
        latents = latents * vae.config.scaling_factor
        noise = torch.randn(latents.shape, generator=generator)
        timesteps = torch.randint(0, scheduler.config.num_train_timesteps, (len(latents),), generator=generator)
        prediction = unet(scheduler.add_noise(latents, noise, timesteps), timesteps,
                          encoder_hidden_states=empty_prompt.expand(len(latents), -1, -1)).sample
        loss = F.mse_loss(prediction, noise)
        _optimise(loss, optimiser, schedule, "unet", step, settings.unet_steps)
    unet.eval()
    return float(loss.item())


def pretrain_base(out: pathlib.Path, settings: BaseSettings) -> dict:
    """Train the toy base and save it under ``out`` as a diffusers SD folder. Returns losses and seconds."""
    torch.manual_seed(settings.seed)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:  # the tokenizer reads its files once, into memory
        parts = tiny_components(settings.seed, tokenizer_dir=folder)
    text_encoder, tokenizer = parts["text_encoder"], parts["tokenizer"]
    vae = toy_vae(settings.image_size, settings.vae_norm_groups)
    vae_loss = train_vae(vae, settings)
    vae.register_to_config(scaling_factor=latent_scale(vae, settings.image_size, settings.world))
    with torch.no_grad():
        tokens = tokenizer([""], padding="max_length", max_length=tokenizer.model_max_length, return_tensors="pt")
        empty_prompt = text_encoder(tokens.input_ids)[0]
    unet = toy_unet(settings.image_size // 8)
    unet_loss = train_unet(unet, vae, empty_prompt, settings)
    pipeline = StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                                       scheduler=noise_schedule(), safety_checker=None, feature_extractor=None,
                                       requires_safety_checker=False)
    pipeline.save_pretrained(out, safe_serialization=True)
    return {"vae_loss": vae_loss, "unet_loss": unet_loss, "seconds": round(time.perf_counter() - started, 1)}

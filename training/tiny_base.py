"""A tiny, randomly initialised Stable-Diffusion-shaped base model, made in code (no download).

Used by ``--demo``, the tests and the CPU benchmark. It has SD 1.5's structure (UNet2DConditionModel,
AutoencoderKL with 8x downsampling and 4 latent channels, CLIP text encoder and tokenizer, DDPM
schedule), only far smaller: the UNet has block_out_channels (32, 64) and cross_attention_dim 32.
``save_tiny_base`` writes it as a diffusers folder so the normal base-model loading path reads it.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import torch

TINY_CROSS_ATTENTION_DIM = 32
# The tokenizer's vocabulary: CLIP's byte-level alphabet, each byte alone and as a word end.
_SPECIAL_TOKENS = ("<|startoftext|>", "<|endoftext|>")


def _byte_alphabet() -> list[str]:
    """The 256 printable characters CLIP's byte-level BPE maps bytes to (GPT-2's table)."""
    printable = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
                 + list(range(ord("®"), ord("ÿ") + 1)))
    extra = [b for b in range(256) if b not in printable]
    return [chr(b) for b in printable] + [chr(256 + i) for i in range(len(extra))]


def write_tiny_tokenizer(folder: str | os.PathLike) -> Path:
    """Write vocab.json and merges.txt of a character-level CLIP tokenizer (514 tokens) into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    alphabet = _byte_alphabet()
    tokens = alphabet + [c + "</w>" for c in alphabet] + list(_SPECIAL_TOKENS)
    (folder / "vocab.json").write_text(json.dumps({token: i for i, token in enumerate(tokens)}), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")
    return folder


def _tiny_text_config(projection_dim: int = TINY_CROSS_ATTENTION_DIM):
    """The tiny CLIP text encoder's config: 2 layers of width 32 over the tiny tokenizer's 514 tokens."""
    from transformers import CLIPTextConfig

    return CLIPTextConfig(
        hidden_size=TINY_CROSS_ATTENTION_DIM, intermediate_size=64, num_attention_heads=4, num_hidden_layers=2,
        vocab_size=len(_byte_alphabet()) * 2 + len(_SPECIAL_TOKENS), max_position_embeddings=77,
        projection_dim=projection_dim, bos_token_id=512, eos_token_id=513, pad_token_id=513,
    )


def _tiny_tokenizer(tokenizer_dir: str | os.PathLike | None):
    """The character-level CLIP tokenizer, its files written to ``tokenizer_dir`` (a temporary folder when None)."""
    import tempfile

    from transformers import CLIPTokenizer

    folder = Path(tokenizer_dir) if tokenizer_dir is not None else Path(tempfile.mkdtemp(prefix="tiny_tokenizer_"))
    write_tiny_tokenizer(folder)
    return CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=77)


def _tiny_vae_and_schedule() -> dict:
    """The tiny VAE (8x down, 4 latent channels) and SD's DDPM training schedule, shared by both families."""
    from diffusers import AutoencoderKL, DDPMScheduler

    vae = AutoencoderKL(
        in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4, block_out_channels=(16, 16, 16, 16), layers_per_block=1,
        latent_channels=4, norm_num_groups=8, sample_size=64,
    )
    scheduler = DDPMScheduler(
        num_train_timesteps=1000, beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012,
        prediction_type="epsilon", steps_offset=1, clip_sample=False,
    )
    return {"vae": vae, "scheduler": scheduler}


def tiny_components(seed: int = 0, tokenizer_dir: str | os.PathLike | None = None) -> dict:
    """Build the tiny base: dict with unet, vae, text_encoder, tokenizer, scheduler (all diffusers/transformers).

    The tokenizer files are written to ``tokenizer_dir`` (a temporary folder when None).
    Latents are 4 x H/8 x W/8; text embeddings are 77 x 32.
    """
    from diffusers import UNet2DConditionModel
    from transformers import CLIPTextModel

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        sample_size=8,
        in_channels=4,
        out_channels=4,
        block_out_channels=(32, 64),
        layers_per_block=1,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=TINY_CROSS_ATTENTION_DIM,
        attention_head_dim=8,
        norm_num_groups=32,
    )
    parts = _tiny_vae_and_schedule()
    text_encoder = CLIPTextModel(_tiny_text_config())
    return {"unet": unet, **parts, "text_encoder": text_encoder, "tokenizer": _tiny_tokenizer(tokenizer_dir)}


TINY_SDXL_POOLED_DIM = 32  # the second tiny text encoder's pooled output
TINY_SDXL_TIME_EMBED_DIM = 8  # each of the six size ids' sinusoidal width


def tiny_sdxl_unet(seed: int = 0):
    """A random SDXL-shaped ``UNet2DConditionModel``: SDXL's layout (the first level without attention, linear
    projections, deeper transformers below, a head per 64 channels, the ``text_time`` added embedding) at a
    fraction of its size: levels (64, 128), cross-attention width 64 (two tiny text encoders of 32, concatenated),
    added embedding from a 32-wide pooled text and 8-wide size ids (input 32 + 6 x 8 = 80)."""
    from diffusers import UNet2DConditionModel

    torch.manual_seed(seed)
    return UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, block_out_channels=(64, 128), layers_per_block=1,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        transformer_layers_per_block=(1, 2), attention_head_dim=(1, 2), use_linear_projection=True,
        cross_attention_dim=2 * TINY_CROSS_ATTENTION_DIM, addition_embed_type="text_time",
        addition_time_embed_dim=TINY_SDXL_TIME_EMBED_DIM,
        projection_class_embeddings_input_dim=TINY_SDXL_POOLED_DIM + 6 * TINY_SDXL_TIME_EMBED_DIM,
        norm_num_groups=32,
    )


def tiny_sdxl_components(seed: int = 0, tokenizer_dir: str | os.PathLike | None = None) -> dict:
    """The tiny SDXL-shaped base: unet (``tiny_sdxl_unet``), vae, two text encoders (CLIP-L's place: a tiny
    ``CLIPTextModel``; OpenCLIP-bigG's: a tiny ``CLIPTextModelWithProjection`` whose projection is the pooled
    text), both tokenizers, scheduler: the parts of a diffusers ``StableDiffusionXLPipeline``. Text embeddings are
    77 x 64 (the two penultimate hidden states concatenated), the pooled text 32 wide."""
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    unet = tiny_sdxl_unet(seed)
    parts = _tiny_vae_and_schedule()
    tokenizer = _tiny_tokenizer(tokenizer_dir)
    return {"unet": unet, **parts, "text_encoder": CLIPTextModel(_tiny_text_config()), "tokenizer": tokenizer,
            "text_encoder_2": CLIPTextModelWithProjection(_tiny_text_config(TINY_SDXL_POOLED_DIM)),
            "tokenizer_2": tokenizer}


def save_tiny_base(folder: str | os.PathLike, seed: int = 0, family: str = "sd15") -> Path:
    """Write the tiny base of ``family`` ("sd15": ``tiny_components``, "sdxl": ``tiny_sdxl_components``) as a
    diffusers folder (model_index.json, unet/, vae/, ...), as the normal base-model loading path reads it."""
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline

    folder = Path(folder)
    source = folder / "_tokenizer_source"
    if family == "sdxl":
        pipeline = StableDiffusionXLPipeline(**tiny_sdxl_components(seed, tokenizer_dir=source), add_watermarker=False)
    else:
        pipeline = StableDiffusionPipeline(**tiny_components(seed, tokenizer_dir=source), safety_checker=None,
                                           feature_extractor=None, requires_safety_checker=False)
    pipeline.save_pretrained(folder, safe_serialization=True)
    for leftover in source.iterdir():
        leftover.unlink()
    source.rmdir()
    return folder

"""The base model families a Color Stroke ControlNet is made for, each described once.

A family is an architecture: the UNet the ControlNet copies and the one it steers. ``sd15`` is Stable Diffusion
1.5 and its fine-tunes (one text encoder, cross-attention width 768). ``sdxl`` is SDXL and the checkpoints that share
its UNet (Illustrious, NoobAI, Pony): two text encoders (cross-attention width 2048) and the ``text_time`` added
embedding (pooled text + size ids). A file's family is recorded in its metadata (``colorstroke.base_family``) and
read from its tensors when it is not (``family_of``).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Family:
    """key: the name files and options use; name: the name people read; cross_attention_dim: the full-size model's
    text width; text_time: whether the UNet has SDXL's added embedding; checkpoints: what people call its bases;
    heads_from_width: the attention heads of a level are its width / 64 (SDXL) instead of a fixed 8 (SD 1.5)."""

    key: str
    name: str
    cross_attention_dim: int
    text_time: bool
    checkpoints: str
    heads_from_width: bool


FAMILIES = {
    "sd15": Family("sd15", "SD 1.5", 768, False, "SD 1.5 and its fine-tunes", False),
    "sdxl": Family("sdxl", "SDXL", 2048, True, "SDXL, Illustrious, NoobAI, Pony", True),
}
SD2_CROSS_ATTENTION_DIM = 1024  # SD 2.x: the sd15 architecture with another text encoder; not a family of ours
# Families a base or a file can be of that have no Color Stroke ControlNet: key -> what people call them.
OTHER_FAMILIES = {"sd2": "SD 2.x"}
# The width of SDXL's added embedding's input: the pooled text (1280) and six size ids of SDXL_TIME_EMBED_DIM each;
# what ComfyUI calls a UNet's adm_in_channels.
SDXL_ADDED_EMBED_DIM = 2816
# The keys of SDXL's added embedding in each layout (diffusers, ldm), and the width of each of its six size ids'
# sinusoidal embedding (SDXL's addition_time_embed_dim; the tensors do not tell it apart from the pooled text's).
TEXT_TIME_PREFIXES = ("add_embedding.", "label_emb.")
SDXL_TIME_EMBED_DIM = 256
# SDXL's UNet at full size, as diffusers' UNet2DConditionModel takes it (stabilityai/stable-diffusion-xl-base-1.0's
# config): the benchmarks and the live checks build random SDXL-sized models from it.
SDXL_UNET_CONFIG = dict(
    sample_size=128, in_channels=4, out_channels=4, block_out_channels=(320, 640, 1280), layers_per_block=2,
    down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
    up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
    transformer_layers_per_block=(1, 2, 10), attention_head_dim=(5, 10, 20), use_linear_projection=True,
    cross_attention_dim=2048, addition_embed_type="text_time", addition_time_embed_dim=SDXL_TIME_EMBED_DIM,
    projection_class_embeddings_input_dim=SDXL_ADDED_EMBED_DIM,
)


def family_of(cross_attention_dim: int | None, text_time: bool) -> str:
    """The family key of a UNet or ControlNet: "sdxl" when it has the added embedding, "sd2" for SD 2.x's text
    width, else "sd15" (the SD 1.5 architecture at any width: tiny test models too)."""
    if text_time:
        return "sdxl"
    if cross_attention_dim == SD2_CROSS_ATTENTION_DIM:
        return "sd2"
    return "sd15"


def model_family(model) -> str:
    """The family key of a diffusers UNet or ControlNet, from its config: its text width and added embedding."""
    return family_of(model.config.cross_attention_dim, model.config.addition_embed_type == "text_time")


def family_name(key: str) -> str:
    """What people call family ``key`` ("SD 1.5", "SDXL", "SD 2.x", or the key itself)."""
    return FAMILIES[key].name if key in FAMILIES else OTHER_FAMILIES.get(key, key)


def check_family(key: str | None, others: bool = False) -> str | None:
    """``key`` when it names a family (or is None: any; with ``others``, one of ``OTHER_FAMILIES`` too, as a base
    can be); ValueError listing the families otherwise."""
    if key is not None and key not in FAMILIES and not (others and key in OTHER_FAMILIES):
        raise ValueError(f"unknown base family {key!r}: choose one of {', '.join(FAMILIES)}")
    return key


def family_to_check(key: str) -> str:
    """The family to check a file of family ``key`` against where no base is in sight (a loader): its own when
    Color Stroke ControlNets exist for it, else SD 1.5 (whose mismatch message then names both)."""
    return key if key in FAMILIES else "sd15"

"""Loading the frozen Stable Diffusion 1.5 base: a diffusers folder or a single .safetensors/.ckpt file.

Returns the UNet, VAE, CLIP text encoder, tokenizer and a DDPM training schedule. A base that is not
SD 1.5 (SD 2.x, SDXL, not a diffusion model at all) is refused with a message that says what it is.
"""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path


class BaseModelError(ValueError):
    """A base model that cannot be used; the message says what was found and what is expected."""


SD15_CROSS_ATTENTION_DIM = 768
SINGLE_FILE_SUFFIXES = (".safetensors", ".ckpt")  # compared in lower case: MODEL.SAFETENSORS is one too


@dataclass
class BaseModel:
    unet: object
    vae: object
    text_encoder: object
    tokenizer: object
    noise_scheduler: object
    source: str


def _single_file_kind(path: Path) -> str:
    """'sd15', 'sd2', 'sdxl' or 'unknown' from the tensor names of a single-file checkpoint."""
    if path.suffix.lower() == ".safetensors":
        from safetensors import safe_open

        try:
            with safe_open(str(path), framework="pt") as handle:
                keys = list(handle.keys())
        except Exception as error:  # safetensors raises its own error types for damaged files
            raise BaseModelError(f"{str(path)!r} is not a readable .safetensors file: {error}") from None
    else:
        import torch

        try:
            state = torch.load(str(path), map_location="cpu", weights_only=True, mmap=True)
        except Exception as error:  # pickle and zip errors vary by torch version
            raise BaseModelError(f"{str(path)!r} is not a readable .ckpt file: {error}") from None
        keys = list(state.get("state_dict", state))
    if any(k.startswith(("conditioner.embedders.1", "model.diffusion_model.label_emb")) for k in keys):
        return "sdxl"
    if any(k.startswith("cond_stage_model.model.") for k in keys):
        return "sd2"
    if any(k.startswith("model.diffusion_model.") for k in keys):
        return "sd15"
    return "unknown"


@contextlib.contextmanager
def _lower_case_suffix(path: Path):
    """``path``, or a symbolic link to it whose suffix is in lower case (diffusers picks the reader by the
    exact suffix: it would read MODEL.SAFETENSORS as a torch pickle and fail), removed afterwards."""
    if path.suffix == path.suffix.lower():
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="base-") as folder:
        link = Path(folder) / (path.stem + path.suffix.lower())
        try:
            os.symlink(path.resolve(), link)
        except OSError as error:
            raise BaseModelError(f"cannot read {str(path)!r} through a lower-case link ({error}); rename it to "
                                 f"{path.stem + path.suffix.lower()!r}") from None
        yield link


def check_sd15(unet, text_encoder, source: str, allow_other: bool = False) -> None:
    """Raise BaseModelError unless unet/text encoder have SD 1.5's shapes (SDXL is refused always)."""
    config = unet.config
    if getattr(config, "addition_embed_type", None) == "text_time":
        raise BaseModelError(f"{source!r} is an SDXL model; this ControlNet is for SD 1.5: pass an SD 1.5 base")
    if config.in_channels != 4:
        raise BaseModelError(f"{source!r} has a UNet with {config.in_channels} input channels (inpainting or other); "
                             "pass a plain SD 1.5 base with 4")
    if allow_other:
        return
    if (config.cross_attention_dim != SD15_CROSS_ATTENTION_DIM
            or text_encoder.config.hidden_size != SD15_CROSS_ATTENTION_DIM):
        kind = "SD 2.x" if config.cross_attention_dim == 1024 else f"cross-attention width {config.cross_attention_dim}"
        raise BaseModelError(f"{source!r} is not SD 1.5 ({kind}; SD 1.5 has 768); pass an SD 1.5 base, "
                             "or --allow_non_sd15 for experiments")


def load_base(path, base_config=None, allow_non_sd15: bool = False) -> BaseModel:
    """Load a frozen base from ``path``; ``base_config`` is a local diffusers folder for single files."""
    from diffusers import AutoencoderKL, DDPMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    path = Path(path)
    if not path.exists():
        raise BaseModelError(f"base model {str(path)!r} does not exist; pass an SD 1.5 diffusers folder "
                             "or .safetensors")
    if path.is_dir():
        index = path / "model_index.json"
        if not index.is_file() or not (path / "unet" / "config.json").is_file():
            raise BaseModelError(f"{str(path)!r} is not a diffusers Stable Diffusion folder (needs model_index.json "
                                 "and unet/); pass such a folder or a single SD 1.5 .safetensors/.ckpt file")
        if "text_encoder_2" in json.loads(index.read_text(encoding="utf-8")):
            raise BaseModelError(f"{str(path)!r} is an SDXL folder; this ControlNet is for SD 1.5")
        unet = UNet2DConditionModel.from_pretrained(path, subfolder="unet")
        vae = AutoencoderKL.from_pretrained(path, subfolder="vae")
        text_encoder = CLIPTextModel.from_pretrained(path, subfolder="text_encoder")
        tokenizer = CLIPTokenizer.from_pretrained(path, subfolder="tokenizer")
        scheduler_config = DDPMScheduler.load_config(path, subfolder="scheduler")
    elif path.suffix.lower() in SINGLE_FILE_SUFFIXES:
        kind = _single_file_kind(path)
        if kind == "sdxl":
            raise BaseModelError(f"{str(path)!r} is an SDXL checkpoint; this ControlNet is for SD 1.5: "
                                 "pass an SD 1.5 file")
        if kind == "unknown":
            raise BaseModelError(f"{str(path)!r} holds no Stable Diffusion UNet (no model.diffusion_model.* tensors); "
                                 "is it a LoRA, VAE or ControlNet file? pass a full SD 1.5 checkpoint")
        if kind == "sd2" and not allow_non_sd15:
            raise BaseModelError(f"{str(path)!r} is an SD 2.x checkpoint; this ControlNet is for SD 1.5")
        with _lower_case_suffix(path) as readable:
            try:
                pipeline = StableDiffusionPipeline.from_single_file(
                    str(readable), config=str(base_config) if base_config else None,
                    local_files_only=base_config is not None, safety_checker=None, requires_safety_checker=False,
                )
            except (OSError, ValueError) as error:
                raise BaseModelError(
                    f"cannot build SD 1.5 from {str(path)!r}: {error}. Offline, pass --base_config with a local "
                    "diffusers SD 1.5 folder (its config files are enough)"
                ) from None
        unet, vae, text_encoder, tokenizer = pipeline.unet, pipeline.vae, pipeline.text_encoder, pipeline.tokenizer
        scheduler_config = pipeline.scheduler.config
    else:
        raise BaseModelError(f"{str(path)!r} is neither a folder nor a .safetensors/.ckpt file")
    check_sd15(unet, text_encoder, str(path), allow_non_sd15)
    for module in (unet, vae, text_encoder):
        module.requires_grad_(False)
        module.eval()
    noise_scheduler = DDPMScheduler.from_config(scheduler_config)
    return BaseModel(unet, vae, text_encoder, tokenizer, noise_scheduler, str(path))

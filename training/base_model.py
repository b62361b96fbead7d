"""Loading the frozen base, SD 1.5 or SDXL (``model.families``): a diffusers folder or a single
.safetensors/.ckpt file as ComfyUI and A1111 keep them (SDXL, Illustrious, NoobAI, Pony are SDXL files).

Returns the UNet, VAE, text encoder(s), tokenizer(s), a DDPM training schedule and the family. A base of
neither family (SD 2.x, an SDXL refiner, an inpainting UNet, not a diffusion model at all) is refused with a
message that says what it is.
"""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from model.families import FAMILIES, family_name, model_family


class BaseModelError(ValueError):
    """A base model that cannot be used; the message says what was found and what is expected."""


SINGLE_FILE_SUFFIXES = (".safetensors", ".ckpt")  # compared in lower case: MODEL.SAFETENSORS is one too


@dataclass
class BaseModel:
    """The frozen base. family: "sd15" or "sdxl"; text_encoder_2 / tokenizer_2: SDXL's second text encoder
    (OpenCLIP ViT-bigG, with the projection that gives the pooled text) and its tokenizer, None for SD 1.5."""

    unet: object
    vae: object
    text_encoder: object
    tokenizer: object
    noise_scheduler: object
    source: str
    family: str = "sd15"
    text_encoder_2: object = None
    tokenizer_2: object = None

    @classmethod
    def from_parts(cls, parts: dict, source: str = "parts") -> "BaseModel":
        """A BaseModel of a diffusers pipeline's parts (``unet``, ``vae``, ``text_encoder``, ``tokenizer``,
        ``scheduler``, and SDXL's ``text_encoder_2``, ``tokenizer_2``), its family read from the UNet."""
        return cls(parts["unet"], parts["vae"], parts["text_encoder"], parts["tokenizer"], parts["scheduler"], source,
                   model_family(parts["unet"]), parts.get("text_encoder_2"), parts.get("tokenizer_2"))

    @property
    def text_encoders(self) -> list:
        """[(tokenizer, text encoder)] in the family's order: CLIP ViT-L first, SDXL's OpenCLIP ViT-bigG second."""
        pairs = [(self.tokenizer, self.text_encoder), (self.tokenizer_2, self.text_encoder_2)]
        return [(tokenizer, encoder) for tokenizer, encoder in pairs if encoder is not None]

    @property
    def frozen_modules(self) -> list:
        """The UNet, the VAE and every text encoder."""
        return [self.unet, self.vae, *(encoder for _, encoder in self.text_encoders)]

    def pipeline_parts(self, scheduler) -> dict:
        """The parts of the family's diffusers pipeline (``model.inference.controlnet_pipeline``), ``scheduler``
        among them."""
        parts = {"vae": self.vae, "text_encoder": self.text_encoder, "tokenizer": self.tokenizer, "unet": self.unet,
                 "scheduler": scheduler}
        if self.text_encoder_2 is not None:
            parts.update(text_encoder_2=self.text_encoder_2, tokenizer_2=self.tokenizer_2)
        return parts


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


def check_base(unet, text_encoder, source: str, allow_other: bool = False) -> str:
    """The family ("sd15" or "sdxl") of a base's UNet and first text encoder; BaseModelError for an inpainting or
    other UNet, SD 2.x, and (unless ``allow_other``: tiny test models) shapes that are not the family's full size."""
    config = unet.config
    if config.in_channels != 4:
        raise BaseModelError(f"{source!r} has a UNet with {config.in_channels} input channels (inpainting or other); "
                             "pass a plain SD 1.5 or SDXL base with 4")
    family = model_family(unet)
    if family == "sd2" and not allow_other:
        raise BaseModelError(f"{source!r} is not SD 1.5 (SD 2.x; SD 1.5 has cross-attention width 768): "
                             f"pass an SD 1.5 or SDXL base")
    width = FAMILIES[family].cross_attention_dim if family in FAMILIES else None
    if allow_other or config.cross_attention_dim == width:
        return family
    if family == "sdxl":
        width = config.cross_attention_dim
        kind = "an SDXL refiner" if width == 1280 else f"cross-attention width {width}"
        raise BaseModelError(f"{source!r} is not an SDXL base ({kind}; SDXL has 2048): pass an SDXL-architecture base "
                             f"({FAMILIES['sdxl'].checkpoints}), or --allow_non_sd15 for experiments")
    raise BaseModelError(f"{source!r} is not SD 1.5 (cross-attention width {config.cross_attention_dim}; SD 1.5 has "
                         f"768, its text encoder {text_encoder.config.hidden_size}); pass an SD 1.5 base, or "
                         "--allow_non_sd15 for experiments")


def _pipeline_class(family: str):
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline

    return StableDiffusionXLPipeline if family == "sdxl" else StableDiffusionPipeline


def _folder_parts(path: Path) -> dict:
    """The parts of a diffusers SD 1.5 or SDXL folder (SDXL: the one whose model_index.json names text_encoder_2)."""
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

    index = path / "model_index.json"
    if not index.is_file() or not (path / "unet" / "config.json").is_file():
        raise BaseModelError(f"{str(path)!r} is not a diffusers Stable Diffusion folder (needs model_index.json "
                             "and unet/); pass such a folder or a single SD 1.5 or SDXL .safetensors/.ckpt file")
    try:
        parts = {"unet": UNet2DConditionModel.from_pretrained(path, subfolder="unet"),
                 "vae": AutoencoderKL.from_pretrained(path, subfolder="vae"),
                 "text_encoder": CLIPTextModel.from_pretrained(path, subfolder="text_encoder"),
                 "tokenizer": CLIPTokenizer.from_pretrained(path, subfolder="tokenizer"),
                 "scheduler_config": DDPMScheduler.load_config(path, subfolder="scheduler")}
        if "text_encoder_2" in json.loads(index.read_text(encoding="utf-8")):
            parts["text_encoder_2"] = CLIPTextModelWithProjection.from_pretrained(path, subfolder="text_encoder_2")
            parts["tokenizer_2"] = CLIPTokenizer.from_pretrained(path, subfolder="tokenizer_2")
    except (OSError, ValueError) as error:  # a part missing or damaged
        raise BaseModelError(f"cannot load the diffusers folder {str(path)!r}: {error}") from None
    return parts


def _single_file_parts(path: Path, base_config, allow_non_sd15: bool) -> dict:
    """The parts of a single-file SD 1.5 or SDXL checkpoint, built by diffusers with ``base_config``'s configs."""
    kind = _single_file_kind(path)
    if kind == "unknown":
        raise BaseModelError(f"{str(path)!r} holds no Stable Diffusion UNet (no model.diffusion_model.* tensors); "
                             "is it a LoRA, VAE or ControlNet file? pass a full SD 1.5 or SDXL checkpoint")
    if kind == "sd2" and not allow_non_sd15:
        raise BaseModelError(f"{str(path)!r} is an SD 2.x checkpoint; this ControlNet is for SD 1.5 or SDXL")
    name = family_name("sdxl" if kind == "sdxl" else "sd15")
    options = {"add_watermarker": False} if kind == "sdxl" else {"safety_checker": None,
                                                                 "requires_safety_checker": False}
    with _lower_case_suffix(path) as readable:
        try:
            pipeline = _pipeline_class(kind).from_single_file(
                str(readable), config=str(base_config) if base_config else None,
                local_files_only=base_config is not None, **options)
        except (OSError, ValueError) as error:
            raise BaseModelError(
                f"cannot build {name} from {str(path)!r}: {error}. Offline, pass --base_config with a local "
                f"diffusers {name} folder (its config files are enough)"
            ) from None
    parts = {key: getattr(pipeline, key) for key in ("unet", "vae", "text_encoder", "tokenizer")}
    parts["scheduler_config"] = pipeline.scheduler.config
    if kind == "sdxl":
        parts.update(text_encoder_2=pipeline.text_encoder_2, tokenizer_2=pipeline.tokenizer_2)
    return parts


def load_vae(path):
    """A diffusers ``AutoencoderKL`` folder (config.json and weights) to use instead of the base's VAE."""
    from diffusers import AutoencoderKL

    folder = Path(path)
    if not (folder / "config.json").is_file():
        raise BaseModelError(f"--vae {str(path)!r} is not a diffusers VAE folder (config.json and "
                             "diffusion_pytorch_model.safetensors), such as madebyollin/sdxl-vae-fp16-fix")
    return AutoencoderKL.from_pretrained(folder)


def load_base(path, base_config=None, allow_non_sd15: bool = False, vae=None) -> BaseModel:
    """Load a frozen SD 1.5 or SDXL base from ``path``; ``base_config`` is a local diffusers folder for single files;
    ``vae``: a diffusers VAE folder that replaces the base's (``load_vae``)."""
    from diffusers import DDPMScheduler

    path = Path(path)
    if not path.exists():
        raise BaseModelError(f"base model {str(path)!r} does not exist; pass an SD 1.5 or SDXL diffusers folder "
                             "or .safetensors file")
    if path.is_dir():
        parts = _folder_parts(path)
    elif path.suffix.lower() in SINGLE_FILE_SUFFIXES:
        parts = _single_file_parts(path, base_config, allow_non_sd15)
    else:
        raise BaseModelError(f"{str(path)!r} is neither a folder nor a .safetensors/.ckpt file")
    family = check_base(parts["unet"], parts["text_encoder"], str(path), allow_non_sd15)
    if (family == "sdxl") != ("text_encoder_2" in parts):
        raise BaseModelError(f"{str(path)!r} has {'one text encoder' if family == 'sdxl' else 'two text encoders'} "
                             f"but a{' ' if family == 'sdxl' else 'n '}{family_name(family)} UNet; pass a whole "
                             f"{family_name(family)} base")
    if vae:
        parts["vae"] = load_vae(vae)
    noise_scheduler = DDPMScheduler.from_config(parts.pop("scheduler_config"))
    base = BaseModel(parts["unet"], parts["vae"], parts["text_encoder"], parts["tokenizer"], noise_scheduler,
                     str(path), family, parts.get("text_encoder_2"), parts.get("tokenizer_2"))
    for module in base.frozen_modules:
        module.requires_grad_(False)
        module.eval()
    return base

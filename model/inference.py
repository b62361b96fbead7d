"""Running the Color Stroke ControlNet with diffusers: a line drawing + colour strokes -> an image.

``StableDiffusionControlNetPipeline`` carries the 5-channel hint as it is when it is passed as a
Bx5xHxW float tensor in [0, 1] at the output size (its control-image processor only resizes tensors
and does not normalise them), so ``colorize`` uses that pipeline and needs no sampling loop of its own.

Example::

    from model import load_checkpoint
    from model.inference import colorize, load_base_pipeline
    from preprocessors import load_image

    base = load_base_pipeline("models/v1-5-pruned-emaonly.safetensors", config="models/sd15-config")
    controlnet, info = load_checkpoint("models/control_colorstroke_sd15.safetensors")
    image = colorize(base, controlnet, load_image("drawing.png"), load_image("strokes.png"),
                     prompt="a red fox in a meadow", steps=20, seed=1)
    image.save("fox.png")

``colorize`` also takes the file's path instead of the loaded model: a control-LoRA
(``control_colorstroke_sd15_control_lora_rank128.safetensors``) can only be given so, since it is rebuilt on the
pipeline's own UNet (``load_controlnet_for``).
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

from ._contract import (
    DEFAULT_CANNY,
    DEFAULT_EDGE_POLARITY,
    HintError,
    inference_hint,
    resize_hint,
    strokes_removed,
    to_model_polarity,
)
from .errors import CheckpointError
from .families import model_family
from .validate import family_mismatch, fill_note, trained_with_fill

_PARTS = ("vae", "text_encoder", "tokenizer", "unet", "scheduler")
_SDXL_PARTS = _PARTS + ("text_encoder_2", "tokenizer_2")


def output_size(lineart, width: int | None = None, height: int | None = None) -> tuple[int, int]:
    """(height, width) of the image: the given size, else the drawing's, each rounded down to a multiple of 8."""
    drawing = np.asarray(lineart).shape[:2]
    height = int(height or drawing[0]) // 8 * 8
    width = int(width or drawing[1]) // 8 * 8
    if height < 8 or width < 8:
        raise HintError(f"the image must be at least 8x8 pixels, got {width}x{height}")
    return height, width


def edge_polarity_of(controlnet) -> str:
    """The edge polarity ``load_checkpoint`` settled on for a ControlNet it read (the file's, the caller's, or
    black_on_white for a file that records none); the contract's default for one built in this process."""
    return getattr(controlnet, "colorstroke_metadata", {}).get("edge_polarity", DEFAULT_EDGE_POLARITY)


def build_hint(lineart, strokes=None, size=None, low: float = DEFAULT_CANNY.low, high: float = DEFAULT_CANNY.high,
               edge_source: str = "canny", mask=None, background=None, fill: bool = False,
               fill_gap: int = 0) -> torch.Tensor:
    """The 1x5xHxW float32 hint tensor in [0, 1] (white edges on black) for a drawing and strokes, resized to
    ``size`` (height, width); fill / fill_gap as ``preprocessors.inference_hint`` takes them."""
    hint = inference_hint(lineart, strokes, mask=mask, background=background, low=low, high=high,
                          edge_source=edge_source, fill=fill, fill_gap=fill_gap)
    if size is not None:
        hint = resize_hint(hint, size)
    return torch.from_numpy(np.ascontiguousarray(hint))[None]


def _parts(pipe_or_parts) -> dict:
    parts = dict(pipe_or_parts) if isinstance(pipe_or_parts, dict) else dict(getattr(pipe_or_parts, "components", {}))
    unet = parts.get("unet")
    wanted = _SDXL_PARTS if unet is not None and model_family(unet) == "sdxl" else _PARTS
    missing = [name for name in wanted if parts.get(name) is None]
    if missing:
        raise ValueError(f"the base pipeline lacks {', '.join(missing)}; pass a diffusers SD 1.5 or SDXL pipeline "
                         f"or a dict with {', '.join(wanted)}")
    return {name: parts[name] for name in wanted}


def load_controlnet_for(pipe_or_parts, path, polarity: str | None = None):
    """The ControlNet of the file at ``path`` for the base pipeline ``pipe_or_parts``: a full one as it is, a
    control-LoRA rebuilt on the pipeline's UNet (so it follows a fine-tuned checkpoint); on the UNet's device and
    dtype. The family is checked where the ControlNet meets the pipeline (``controlnet_pipeline``; a control-LoRA
    already as it is rebuilt: ``load_checkpoint``)."""
    from .checkpoint import load_checkpoint

    unet = _parts(pipe_or_parts)["unet"]
    controlnet, _ = load_checkpoint(path, polarity, family=None, dtype=unet.dtype, base_unet=unet)
    return controlnet.to(unet.device)


def controlnet_pipeline(pipe_or_parts, controlnet):
    """A ``StableDiffusionControlNetPipeline`` (SD 1.5) or ``StableDiffusionXLControlNetPipeline`` (SDXL) sharing
    the base pipeline's parts (no copies, no safety checker); CheckpointError, naming both families, when the
    ControlNet is of another family than the base."""
    from diffusers import StableDiffusionControlNetPipeline, StableDiffusionXLControlNetPipeline

    parts = _parts(pipe_or_parts)
    base, own = model_family(parts["unet"]), model_family(controlnet)
    if own != base:
        raise CheckpointError(family_mismatch(own, base, "the ControlNet", "given"))
    if base == "sdxl":
        return StableDiffusionXLControlNetPipeline(**parts, controlnet=controlnet, add_watermarker=False)
    return StableDiffusionControlNetPipeline(**parts, controlnet=controlnet, safety_checker=None,
                                             feature_extractor=None, requires_safety_checker=False)


def strokes_only_in_conditional_half(controlnet):
    """Stroke guidance for a diffusers pipeline: a forward pre-hook on ``controlnet`` that gives the
    unconditional (first) half of each classifier-free-guidance batch the hint without its strokes, so that
    guidance multiplies what the strokes change as it multiplies what the prompt changes. Returns the hook's
    handle (``.remove()`` it after the pipeline call). Only for calls that run guidance (an even batch, the
    negative half first, as diffusers' ControlNet pipelines lay it out).
    """
    def hook(module, args, kwargs):
        hint = kwargs["controlnet_cond"]
        half = hint.shape[0] // 2
        return args, {**kwargs, "controlnet_cond": torch.cat([strokes_removed(hint[:half]), hint[half:]])}

    return controlnet.register_forward_pre_hook(hook, with_kwargs=True)


@torch.no_grad()
def colorize(pipe_or_parts, controlnet, lineart, strokes=None, prompt: str = "", negative_prompt: str = "",
             steps: int = 20, guidance: float = 7.5, seed: int = 0, strength: float = 1.0,
             low: float = DEFAULT_CANNY.low, high: float = DEFAULT_CANNY.high, edge_polarity: str | None = None,
             edge_source: str = "canny", mask=None, background=None, width: int | None = None,
             height: int | None = None, stroke_guidance: bool = False, fill: bool | None = None,
             fill_gap: int = 0):
    """Colour ``lineart`` following ``strokes``; returns a PIL image of the drawing's size (multiple of 8).

    pipe_or_parts: a diffusers SD 1.5 pipeline, or a dict with vae, text_encoder, tokenizer, unet, scheduler.
    controlnet: a ControlNet ``load_checkpoint`` read, or the path of its file (a control-LoRA too:
    ``load_controlnet_for``).
    lineart / strokes / mask / background: images as ``preprocessors.inference_hint`` takes them (strokes
    None = no colour hints). strength: ControlNet conditioning scale. low / high: Canny thresholds (0-255).
    edge_polarity: None = the one recorded in the checkpoint. stroke_guidance: the negative side of
    classifier-free guidance gets the drawing without strokes (``strokes_only_in_conditional_half``), so
    ``guidance`` (> 1) also amplifies the strokes' colour. fill: fill the strokes between the lines first
    (flats, ``preprocessors.fill_strokes``; gap ``fill_gap`` pixels, 0 = in proportion to the drawing); None =
    as the model was trained (on when its metadata records a fill); a fill the model was not trained with (or
    the reverse) warns (``UserWarning``). Same seed, same inputs -> same image.
    """
    if stroke_guidance and guidance <= 1:
        raise ValueError(f"stroke_guidance works through classifier-free guidance: set guidance above 1 "
                         f"(got {guidance})")
    if isinstance(controlnet, (str, Path)):
        controlnet = load_controlnet_for(pipe_or_parts, controlnet)
    polarity = edge_polarity or edge_polarity_of(controlnet)
    trained_fill = getattr(controlnet, "colorstroke_metadata", {}).get("fill")
    fill = trained_with_fill(trained_fill) if fill is None else bool(fill)
    note = fill_note(trained_fill, fill) if strokes is not None else None
    if note:
        warnings.warn(note, UserWarning, stacklevel=2)
    size = output_size(lineart, width, height)
    hint = build_hint(lineart, strokes, size, low, high, edge_source, mask, background, fill, fill_gap)
    hint = to_model_polarity(hint, polarity)
    pipe = controlnet_pipeline(pipe_or_parts, controlnet)
    device = pipe.unet.device
    generator = torch.Generator(device="cpu").manual_seed(int(seed))
    hook = strokes_only_in_conditional_half(controlnet) if stroke_guidance else None
    try:
        result = pipe(
            prompt=prompt, negative_prompt=negative_prompt or None, image=hint.to(device, controlnet.dtype),
            height=size[0], width=size[1], num_inference_steps=int(steps), guidance_scale=float(guidance),
            controlnet_conditioning_scale=float(strength), generator=generator, output_type="pil",
        )
    finally:
        if hook is not None:
            hook.remove()
    return result.images[0]


def load_base_pipeline(path, config=None, torch_dtype=None, local_files_only: bool = True):
    """An SD 1.5 ``StableDiffusionPipeline`` from a diffusers folder or a single .safetensors/.ckpt file.

    A single file needs the model's diffusers config: ``config`` is a local diffusers SD 1.5 folder
    (model_index.json and each part's config; weights not needed) or, with local_files_only=False and a
    network, a hub repo id such as "stable-diffusion-v1-5/stable-diffusion-v1-5". No safety checker.
    """
    from diffusers import StableDiffusionPipeline

    path = Path(path)
    options = dict(safety_checker=None, requires_safety_checker=False, torch_dtype=torch_dtype,
                   local_files_only=local_files_only)
    if path.is_dir():
        return StableDiffusionPipeline.from_pretrained(str(path), **options)
    if not path.is_file():
        raise CheckpointError(f"base model {str(path)!r} does not exist; pass an SD 1.5 diffusers folder or "
                              ".safetensors file")
    if config is None and local_files_only:
        raise CheckpointError(f"{str(path)!r} is a single file: pass config= a local diffusers SD 1.5 folder "
                              "(its configs and tokenizer), since nothing is downloaded")
    return StableDiffusionPipeline.from_single_file(str(path), config=None if config is None else str(config),
                                                    **options)

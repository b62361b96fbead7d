"""Control-LoRA: a Color Stroke ControlNet kept as low-rank differences from the UNet it was copied from.

A full ControlNet is a trained copy of its base's encoder. A control-LoRA file holds only what a host cannot take
from the checkpoint it samples, so it is a fraction of the size and follows the user's own fine-tune: the host
rebuilds the ControlNet from the sampled UNet and adds the differences (ComfyUI ``comfy.controlnet.ControlLora``,
sd-webui-controlnet ``build_model_by_guess``, Forge ``ControlLora``). The file:

- ``lora_controlnet``: the marker all three hosts look for (an empty tensor);
- the original (ldm) key names, without ``control_model.``;
- for each *low-rank layer* — every ``Linear`` and ``Conv2d`` the ControlNet copies from the UNet (``conv_in``, the
  time and SDXL size embeddings, the resnets' convolutions, time projections and skips, the downsamplers, the
  transformers' projections, attention and feed-forward layers): ``<layer>.up`` (out x r, and x 1 x 1 for a
  convolution) and ``<layer>.down`` (r x in, and x kh x kw); the host's weight becomes its own + ``up @ down``;
- everything else in full: the hint block, the zero convolutions, the middle-block output, and every bias and norm
  of the copied encoder (sd-webui-controlnet builds the ones a file lacks anew: zero biases, unit norms; so they
  are stored, and trained, in full).

``add_low_rank`` turns a ControlNet into one whose low-rank layers train as ``base weight + up @ down`` (the base
weight frozen): the trainer's ``--lora_rank`` mode. ``approximate_with_low_rank`` does the same for a trained full
ControlNet (a truncated SVD of its differences from the base: ``python -m model.convert --control_lora_rank``).
Either is written by ``model.save_checkpoint(..., layout="control_lora")`` and read back on a base UNet by
``model.load_checkpoint(..., base_unet=unet)``.
"""
from __future__ import annotations

import math

import torch
from torch.nn.utils import parametrize

from .build import NEW_PARTS
from .errors import CheckpointError

MARKER = "lora_controlnet"  # the tensor name that makes a host load a file as a control-LoRA
LORA_TARGETS = "Linear and Conv2d layers copied from the UNet"  # recorded as colorstroke.lora_targets
LAYER_TYPES = (torch.nn.Linear, torch.nn.Conv2d)


class LowRankDelta(torch.nn.Module):
    """A weight parametrization: ``weight -> weight + (up @ down)`` reshaped to the weight's shape.

    For an O x I (x kh x kw) weight: ``up`` is O x r (x 1 x 1), ``down`` r x I (x kh x kw), both float32 parameters.
    ``up`` starts at zero (the layer starts as the base's), ``down`` as a Kaiming-uniform layer would (as peft's LoRA).
    """

    def __init__(self, weight: torch.Tensor, rank: int):
        super().__init__()
        ones = (1,) * (weight.ndim - 2)
        self.down = torch.nn.Parameter(torch.empty(rank, *weight.shape[1:], device=weight.device))
        self.up = torch.nn.Parameter(torch.zeros(weight.shape[0], rank, *ones, device=weight.device))
        torch.nn.init.kaiming_uniform_(self.down.data.view(rank, -1), a=math.sqrt(5))

    def delta(self) -> torch.Tensor:
        """``up @ down`` as an O x (I x kh x kw) matrix."""
        return self.up.flatten(1) @ self.down.flatten(1)

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return weight + self.delta().view(weight.shape).to(weight.dtype)


def copied_layers(controlnet) -> dict[str, torch.nn.Module]:
    """name -> module of the low-rank layers: the ``Linear`` and ``Conv2d`` modules copied from the UNet."""
    return {name: module for name, module in controlnet.named_modules()
            if isinstance(module, LAYER_TYPES) and name and not (name + ".").startswith(NEW_PARTS)}


def layer_rank(weight_shape, rank: int) -> int:
    """The rank a layer of ``weight_shape`` gets: ``rank``, but no more than its weight's own (min of out, in*kh*kw)."""
    return max(1, min(rank, weight_shape[0], math.prod(weight_shape[1:])))


def add_low_rank(controlnet, rank: int) -> int:
    """Make every low-rank layer of ``controlnet`` a frozen base weight plus a trainable ``LowRankDelta`` of
    ``layer_rank``; every other tensor (biases, norms, the new parts) stays trainable. Returns the number of layers
    made low-rank.

    The model's ``state_dict`` names of those weights change (``<layer>.parametrizations.weight.original`` and
    ``.0.up`` / ``.0.down``): save it with ``model.save_checkpoint`` (``merged_state_dict``), not ``state_dict``.
    """
    if rank < 1:
        raise ValueError(f"a control-LoRA needs a rank of at least 1, got {rank}")
    layers = copied_layers(controlnet)
    for module in layers.values():
        if parametrize.is_parametrized(module, "weight"):
            raise ValueError("this ControlNet already has low-rank layers")
        parametrize.register_parametrization(module, "weight", LowRankDelta(module.weight, layer_rank(
            module.weight.shape, rank)))
        module.parametrizations.weight.original.requires_grad_(False)
    return len(layers)


def low_rank_deltas(controlnet) -> dict[str, LowRankDelta]:
    """layer name -> its ``LowRankDelta``, for a ControlNet made by ``add_low_rank`` ({} for a plain one)."""
    return {name: module.parametrizations.weight[0] for name, module in controlnet.named_modules()
            if parametrize.is_parametrized(module, "weight")
            and isinstance(module.parametrizations.weight[0], LowRankDelta)}


def lora_rank(controlnet) -> int | None:
    """The largest rank among ``controlnet``'s low-rank layers; None for a plain ControlNet."""
    deltas = low_rank_deltas(controlnet)
    return max(d.down.shape[0] for d in deltas.values()) if deltas else None


def _unparametrized_state(controlnet) -> dict[str, torch.Tensor]:
    """``controlnet``'s state dict without the low-rank layers' weights (base and ``up``/``down`` alike)."""
    return {k: v for k, v in controlnet.state_dict().items() if ".parametrizations." not in k}


def merged_state_dict(controlnet) -> dict[str, torch.Tensor]:
    """The ControlNet's tensors under plain ``ControlNetModel`` names, each low-rank layer's weight merged
    (base + ``up @ down``); a plain ControlNet's ``state_dict`` as it is."""
    state = _unparametrized_state(controlnet)
    with torch.no_grad():
        for name in low_rank_deltas(controlnet):
            state[f"{name}.weight"] = controlnet.get_submodule(name).weight.detach()
    return state


def low_rank_state_dict(controlnet) -> dict[str, torch.Tensor]:
    """What a control-LoRA file holds, under diffusers names: ``<layer>.up`` / ``<layer>.down`` for each low-rank
    layer, every other tensor but the base weights in full. CheckpointError for a plain ControlNet."""
    deltas = low_rank_deltas(controlnet)
    if not deltas:
        raise CheckpointError("a full ControlNet has no low-rank layers to write as a control-LoRA: train it with "
                              "--lora_rank, or convert it: python -m model.convert IN OUT --layout control_lora "
                              "--control_lora_rank R --base BASE")
    state = _unparametrized_state(controlnet)
    for name, delta in deltas.items():
        state[f"{name}.up"], state[f"{name}.down"] = delta.up.detach(), delta.down.detach()
    return state


def apply_low_rank(state: dict[str, torch.Tensor], file_tensors: dict[str, torch.Tensor], source: str) -> dict:
    """A plain ControlNet's state dict from a base ControlNet's ``state`` (copied from the UNet the file is used
    on) and a control-LoRA's ``file_tensors`` under diffusers names: each ``<layer>.up``/``.down`` pair added to
    that layer's weight, every other tensor of the file taken as it is. CheckpointError names the tensors that do
    not fit (``source``: the file, for the message)."""
    merged = dict(state)
    wrong, unknown = [], []
    for name, tensor in file_tensors.items():
        if name.endswith(".down"):
            continue
        if name.endswith(".up"):
            layer = name[:-len(".up")]
            weight, down = state.get(f"{layer}.weight"), file_tensors.get(f"{layer}.down")
            if weight is None or down is None:
                unknown.append(name)
                continue
            delta = tensor.float().flatten(1) @ down.float().flatten(1)
            if delta.numel() != weight.numel():
                wrong.append(name)
                continue
            merged[f"{layer}.weight"] = (weight.float() + delta.view(weight.shape)).to(weight.dtype)
        elif name not in state:
            unknown.append(name)
        elif tuple(state[name].shape) != tuple(tensor.shape):
            wrong.append(name)
        else:
            merged[name] = tensor.to(state[name].dtype)
    if wrong or unknown:
        parts = [f"{label}: {', '.join(names[:8])}{' ...' if len(names) > 8 else ''}"
                 for label, names in (("not of the base's shapes", wrong), ("unknown to the base", unknown)) if names]
        raise CheckpointError(f"{source} does not fit this base UNet (" + "; ".join(parts) + ")")
    return merged


def approximate_with_low_rank(controlnet, base, rank: int) -> dict[str, float]:
    """Turn the full ``controlnet`` into a low-rank one (in place) whose low-rank layers are ``base``'s weights
    plus the best rank-``rank`` approximation of the difference (truncated SVD, split evenly between ``up`` and
    ``down``); every other tensor keeps the full model's value. ``base``: a plain ControlNet copied from the UNet
    the control-LoRA will ride on (``model.build_controlnet(unet)``).

    Returns ``{"weight_error": ...}``: the relative Frobenius error of all low-rank layers' differences together
    (0: exact; 1: as if the differences were dropped).
    """
    base_state = base.state_dict()
    layers = copied_layers(controlnet)
    lost = total = 0.0
    with torch.no_grad():
        for name, module in layers.items():
            base_weight = base_state[f"{name}.weight"]
            difference = (module.weight.float() - base_weight.float()).flatten(1)
            r = layer_rank(module.weight.shape, rank)
            u, s, vh = torch.linalg.svd(difference, full_matrices=False)
            root = s[:r].sqrt()
            up, down = u[:, :r] * root, root[:, None] * vh[:r]
            lost += float((difference - up @ down).square().sum())
            total += float(difference.square().sum())
            module.weight.copy_(base_weight.to(module.weight.dtype))
            delta = LowRankDelta(module.weight, r)
            delta.up.copy_(up.view(delta.up.shape))
            delta.down.copy_(down.view(delta.down.shape))
            parametrize.register_parametrization(module, "weight", delta)
    return {"weight_error": math.sqrt(lost / total) if total else 0.0}


def residual_error(reference, approximation, seed: int = 0, latent_size: int = 32) -> float:
    """The relative error of ``approximation``'s ControlNet residuals against ``reference``'s (root of the summed
    squared differences over the summed squares, all residuals together) on one random probe: Gaussian latents of
    ``latent_size``², a random 5-channel hint in [0, 1], Gaussian text of the model's width, timestep 500 (and for
    SDXL random pooled text with 1024² size ids). A stand-in for real inputs: measure on real ones where they exist.
    """
    config = reference.config
    generator = torch.Generator().manual_seed(seed)
    device, dtype = reference.device, reference.dtype
    sample = torch.randn(1, config.in_channels, latent_size, latent_size, generator=generator)
    hint = torch.rand(1, config.conditioning_channels, 8 * latent_size, 8 * latent_size, generator=generator)
    text = torch.randn(1, 77, config.cross_attention_dim, generator=generator)
    added = None
    if config.addition_embed_type == "text_time":
        pooled = config.projection_class_embeddings_input_dim - 6 * config.addition_time_embed_dim
        added = {"text_embeds": torch.randn(1, pooled, generator=generator).to(device, dtype),
                 "time_ids": torch.tensor([[1024.0, 1024.0, 0.0, 0.0, 1024.0, 1024.0]], device=device, dtype=dtype)}
    inputs = dict(sample=sample.to(device, dtype), timestep=torch.tensor([500], device=device),
                  encoder_hidden_states=text.to(device, dtype), controlnet_cond=hint.to(device, dtype),
                  added_cond_kwargs=added, return_dict=False)
    with torch.no_grad():
        down, mid = reference(**inputs)
        down_approx, mid_approx = approximation(**inputs)
    pairs = list(zip([*down, mid], [*down_approx, mid_approx], strict=True))
    lost = sum(float((a.float() - b.float()).square().sum()) for a, b in pairs)
    total = sum(float(a.float().square().sum()) for a, _ in pairs)
    return math.sqrt(lost / total) if total else 0.0

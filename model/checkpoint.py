"""Saving and loading the ControlNet as one .safetensors file (diffusers or ldm layout) or a diffusers folder.

File layouts (see ``keymap``): ``diffusers`` keeps ``ControlNetModel.state_dict()`` names; ``ldm`` writes
lllyasviel's ``control_model.*`` names that ComfyUI, sd-webui-controlnet and Forge read; ``control_lora`` writes
a control-LoRA (``control_lora``: low-rank differences from the base UNet, rebuilt on the checkpoint a host
samples). The header metadata follows ``metadata``. ``load_checkpoint`` reads any of them (a control-LoRA on a
base UNet), a whole-model ldm checkpoint (keeps only ``control_model.*``), torch files through
``torch.load(weights_only=True)``, and folders written by ``save_pretrained``.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path

import torch

from ._contract import (
    DEFAULT_EDGE_POLARITY,
    HINT_CHANNELS,
    HINT_FORMAT,
    HINT_VERSION,
    check_polarity,
    unrecorded_polarity_note,
)
from .build import build_controlnet, middle_block_only, set_middle_block_only
from .control_lora import LORA_TARGETS, MARKER, apply_low_rank, lora_rank, low_rank_state_dict, merged_state_dict
from .errors import CheckpointError
from .families import FAMILIES, SDXL_TIME_EMBED_DIM, TEXT_TIME_PREFIXES, family_of, model_family
from .files import SAFETENSORS_SUFFIX, atomic_save_safetensors, honour_umask, read_file_metadata, read_tensors
from .keymap import (
    LDM_PREFIX,
    diffusers_to_ldm,
    ldm_to_diffusers,
    structure_from_diffusers_keys,
    structure_from_ldm_keys,
)
from .metadata import PREFIX as METADATA_PREFIX
from .metadata import decode, encode
from .validate import check_color_stroke, family_mismatch, inspect_state_dict

LAYOUTS = ("diffusers", "ldm", "control_lora")
DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
METADATA_FILE = "colorstroke.json"  # our metadata beside a save_pretrained folder's config.json


def resolve_dtype(dtype) -> torch.dtype | None:
    """None, "fp32"/"fp16"/"bf16" (or "float32", ...) or a torch float dtype -> torch dtype; else CheckpointError."""
    if dtype is None or dtype in DTYPES.values():
        return dtype
    aliases = {"float32": "fp32", "float16": "fp16", "half": "fp16", "bfloat16": "bf16"}
    if isinstance(dtype, str) and aliases.get(dtype.lower(), dtype.lower()) in DTYPES:
        return DTYPES[aliases.get(dtype.lower(), dtype.lower())]
    raise CheckpointError(f"cannot export as {dtype!r}; choose one of {', '.join(DTYPES)}")


def checkpoint_metadata(controlnet, layout: str, metadata: dict | None = None) -> dict[str, str]:
    """The header for ``controlnet``: the contract, its structure and the caller's ``metadata`` (short names)."""
    values = {"edge_polarity": DEFAULT_EDGE_POLARITY}
    values.update({str(k).removeprefix(METADATA_PREFIX): v for k, v in (metadata or {}).items()})
    check_polarity(values["edge_polarity"])
    config = {k: v for k, v in dict(controlnet.config).items() if not k.startswith("_")}
    cross = config.get("cross_attention_dim")
    values.update(
        hint_format=HINT_FORMAT,
        hint_version=HINT_VERSION,
        hint_channels=config["conditioning_channels"],
        base_family=family_of(cross, config.get("addition_embed_type") == "text_time"),
        cross_attention_dim=cross,
        layout=layout,
        middle_block_only=middle_block_only(controlnet),
        lora_rank=lora_rank(controlnet) if layout == "control_lora" else None,
        lora_targets=LORA_TARGETS if layout == "control_lora" else None,
        config=config,
    )
    return encode(values)


def export_state_dict(controlnet, layout: str = "diffusers", dtype=None) -> dict:
    """The model's tensors under ``layout``'s names, contiguous on the CPU, cast to ``dtype`` when given."""
    if layout not in LAYOUTS:
        raise CheckpointError(f"unknown layout {layout!r}; choose one of {', '.join(LAYOUTS)}")
    dtype = resolve_dtype(dtype)
    state = low_rank_state_dict(controlnet) if layout == "control_lora" else merged_state_dict(controlnet)
    state = {k: v.detach().to("cpu", dtype=dtype or v.dtype).contiguous() for k, v in state.items()}
    if layout == "diffusers":
        return state
    names, unmapped = diffusers_to_ldm(state, structure_from_diffusers_keys(state))
    if unmapped:
        raise CheckpointError("these tensors have no ldm name (not an SD-style ControlNet?): "
                              f"{', '.join(unmapped[:10])}")
    if layout == "control_lora":  # the hosts read a control-LoRA's names without control_model.
        return {MARKER: torch.zeros(0), **{names[k][len(LDM_PREFIX):]: v for k, v in state.items()}}
    return {names[k]: v for k, v in state.items()}


def save_checkpoint(controlnet, path, layout: str = "diffusers", dtype=None, metadata: dict | None = None) -> Path:
    """Write ``controlnet`` to one .safetensors file, atomically; returns the path.

    layout: "diffusers", "ldm" or "control_lora" (a ControlNet with low-rank layers: ``model.control_lora``);
    dtype: None (as is), "fp32", "fp16", "bf16" or a torch dtype;
    metadata: short names of ``metadata`` (edge_polarity, training_step, ...).
    """
    path = Path(path)
    if path.suffix.lower() != SAFETENSORS_SUFFIX:
        raise CheckpointError(f"{str(path)!r}: checkpoints are written as .safetensors; end the name with .safetensors")
    tensors = export_state_dict(controlnet, layout, dtype)
    return atomic_save_safetensors(tensors, path, checkpoint_metadata(controlnet, layout, metadata))


def save_pretrained(controlnet, folder, dtype=None, metadata: dict | None = None) -> Path:
    """A diffusers ``save_pretrained`` folder (config.json + weights) plus ``colorstroke.json``.

    Written into a temporary folder beside ``folder`` and renamed into place; an existing ``folder``
    is replaced only after the new one is complete.
    """
    folder = Path(folder)
    if not folder.parent.is_dir():
        raise CheckpointError(f"cannot write {str(folder)!r}: the folder {str(folder.parent)!r} does not exist; "
                              "create it first")
    if not os.access(folder.parent, os.W_OK | os.X_OK):
        raise CheckpointError(f"cannot write {str(folder)!r}: no write permission in {str(folder.parent)!r}")
    dtype = resolve_dtype(dtype)
    temp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        honour_umask(temp, folder=True)
        original = next(controlnet.parameters()).dtype
        controlnet.to(dtype or original)
        try:
            controlnet.save_pretrained(temp, safe_serialization=True)
        finally:
            controlnet.to(original)
        header = {k[len(METADATA_PREFIX):]: v
                  for k, v in checkpoint_metadata(controlnet, "diffusers", metadata).items()}
        header.pop("config")
        (temp / METADATA_FILE).write_text(json.dumps(header, indent=1), encoding="utf-8")
        for written in temp.iterdir():  # safetensors writes its file private (0600) whatever the umask
            honour_umask(written)
        old = None
        if folder.exists():
            old = folder.with_name(f".{folder.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(folder, old)
        os.replace(temp, folder)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    return folder


def _folder_metadata(folder: Path) -> dict[str, str]:
    """The header metadata of a save_pretrained folder: its ``colorstroke.json`` and config.json as
    ``colorstroke.*`` strings."""
    header = {}
    try:
        extra = json.loads((folder / METADATA_FILE).read_text(encoding="utf-8"))
        header.update(encode(extra) if isinstance(extra, dict) else {})
    except (OSError, ValueError):
        pass  # a folder from elsewhere: no metadata of ours
    try:
        header[METADATA_PREFIX + "config"] = (folder / "config.json").read_text(encoding="utf-8")
    except OSError:
        pass
    return header


def _read(path: Path) -> tuple[dict, dict]:
    """(tensors, header metadata) of a file or a save_pretrained folder."""
    if not path.is_dir():
        return read_tensors(path)
    weights = next((path / n for n in ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin")
                    if (path / n).is_file()), None)
    if weights is None or not (path / "config.json").is_file():
        raise CheckpointError(f"{str(path)!r} is a folder without config.json and diffusion_pytorch_model.safetensors; "
                              "pass a ControlNet file or a diffusers ControlNet folder")
    tensors, _ = read_tensors(weights)
    return tensors, _folder_metadata(path)


def read_metadata(path) -> dict[str, str]:
    """The ``colorstroke.*`` entries a checkpoint records, as the raw header strings, without reading its tensors.

    path: a .safetensors file (its header), a save_pretrained folder (its ``colorstroke.json``) or a torch
    file (records nothing: {}). Raises CheckpointError for a missing, empty or corrupt file.
    """
    path = Path(path)
    header = _folder_metadata(path) if path.is_dir() else read_file_metadata(path)
    return {k: v for k, v in header.items() if k.startswith(METADATA_PREFIX)}


def infer_config(state: dict) -> dict:
    """A ControlNetModel config for a diffusers-layout state dict, from its tensor shapes.

    What shapes cannot tell takes the family's value (``model.families``): 8 attention heads for SD 1.5, a head per
    64 channels and a 256-wide size embedding for SDXL; 32 norm groups.
    """
    structure = structure_from_diffusers_keys(state)
    widths = [state[f"down_blocks.{b}.resnets.0.conv2.weight"].shape[0] for b in range(structure.levels)]
    proj_in = next((v for k, v in state.items() if k.endswith("attentions.0.proj_in.weight")), None)
    depth = []
    for level in range(structure.levels):
        blocks = {k.split(".")[5] for k in state
                  if k.startswith(f"down_blocks.{level}.attentions.0.transformer_blocks.")}
        depth.append(max(1, len(blocks)))
    cross = next((v.shape[1] for k, v in state.items() if k.endswith("attn2.to_k.weight")), 768)
    text_time = any(k.startswith(TEXT_TIME_PREFIXES) for k in state)
    family = FAMILIES.get(family_of(cross, text_time), FAMILIES["sd15"])  # SD 2.x has SD 1.5's architecture
    config = {
        "in_channels": state["conv_in.weight"].shape[1],
        "conditioning_channels": state["controlnet_cond_embedding.conv_in.weight"].shape[1],
        "block_out_channels": widths,
        "layers_per_block": structure.layers_per_block,
        "down_block_types": ["CrossAttnDownBlock2D" if a else "DownBlock2D" for a in structure.attention],
        "cross_attention_dim": cross,
        "transformer_layers_per_block": depth,
        "use_linear_projection": proj_in is not None and proj_in.ndim == 2,
        "conditioning_embedding_out_channels": hint_embedding_widths(state),
    }
    if family.heads_from_width:
        config["attention_head_dim"] = [max(1, width // 64) for width in widths]
    if family.text_time:
        config.update(addition_embed_type="text_time", addition_time_embed_dim=SDXL_TIME_EMBED_DIM,
                      projection_class_embeddings_input_dim=state["add_embedding.linear_1.weight"].shape[1])
    return config


def hint_embedding_widths(state: dict) -> list[int]:
    """The output widths of the hint embedding's convolutions (``conditioning_embedding_out_channels``) of a
    diffusers-layout state dict."""
    structure = structure_from_diffusers_keys(state)
    embed = ["controlnet_cond_embedding.conv_in.weight"] + [
        f"controlnet_cond_embedding.blocks.{k}.weight" for k in range(1, structure.hint_blocks, 2)]
    return [state[k].shape[0] for k in embed]


def _on_base(state: dict, info, base_unet, source: str):
    """The plain ControlNet a control-LoRA's diffusers-named ``state`` makes on ``base_unet`` (its encoder copied,
    the file's differences added)."""
    if base_unet is None:
        raise CheckpointError(f"{source} is a control-LoRA: it holds only differences from the UNet of the checkpoint "
                              "it is used with. Pass that UNet (load_checkpoint(..., base_unet=pipe.unet)), or load it "
                              "in ComfyUI, A1111 or Forge, which take it from the checkpoint being sampled")
    base_family = model_family(base_unet)
    if base_family != info.family:
        raise CheckpointError(family_mismatch(info.family, base_family, source, "given as its base"))
    base = build_controlnet(base_unet, info.hint_channels, hint_embedding_widths(state))
    base.load_state_dict(apply_low_rank(base.state_dict(), state, source), strict=True)
    return base


def _to_diffusers(tensors: dict, info) -> dict:
    """The ControlNet's tensors under diffusers names (ldm ones renamed, SD parts of a whole model dropped)."""
    if info.layout == "diffusers":
        return tensors
    if info.layout == "control_lora":
        tensors = {k: v for k, v in tensors.items() if k != MARKER}
    own = {k: v for k, v in tensors.items() if k.startswith(LDM_PREFIX)} if any(
        k.startswith(LDM_PREFIX) for k in tensors) else tensors
    names, unmapped = ldm_to_diffusers(own, structure_from_ldm_keys(own))
    if unmapped:
        raise CheckpointError(f"unexpected tensors in the ldm ControlNet: {', '.join(sorted(unmapped)[:10])}")
    return {names[k]: v for k, v in own.items()}


def _model_for(state: dict, config: dict | None):
    """A ControlNetModel of ``config`` holding ``state``; CheckpointError lists missing/unexpected names."""
    from diffusers import ControlNetModel

    model = ControlNetModel.from_config(config)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(k for k in set(expected) & set(state) if tuple(expected[k].shape) != tuple(state[k].shape))
    if missing or unexpected or wrong:
        parts = [f"{label}: {', '.join(names[:10])}{' ...' if len(names) > 10 else ''} ({len(names)})"
                 for label, names in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong))
                 if names]
        raise CheckpointError("the tensors do not form a ControlNet: " + "; ".join(parts))
    model.load_state_dict(state, strict=True)
    return model


def load_checkpoint(path, polarity: str | None = None, *, family: str | None = "sd15",
                    hint_channels: int = HINT_CHANNELS, dtype=None, base_unet=None):
    """Read a Color Stroke ControlNet: returns (diffusers ``ControlNetModel`` in eval mode, metadata dict).

    path: a .safetensors / .ckpt / .pth / .bin file in either layout, or a save_pretrained folder.
    polarity: the edge polarity to assume when the file records none; None assumes
    ``UNRECORDED_EDGE_POLARITY`` (black_on_white, the original colour-stroke model) with a warning (shown
    once per file). metadata has at least hint_channels, edge_polarity, hint_version, layout (see
    ``CheckpointInfo``; its ``family`` is the file's). family: the base family the file must be made for
    ("sd15", "sdxl": ``model.families``; another is refused naming both); None accepts any (tiny test models);
    hint_channels=3 reads a standard ControlNet to widen.
    dtype: None keeps the file's dtype (a control-LoRA: the base's).
    base_unet: the diffusers UNet a control-LoRA rides on (needed for one, ignored otherwise): the ControlNet is its
    encoder with the file's differences added, a plain ``ControlNetModel`` (CheckpointError when the UNet is of
    another family than the file, or its shapes do not fit).
    """
    path = Path(path)
    tensors, header = _read(path)
    info = check_color_stroke(inspect_state_dict(tensors, header, polarity), repr(str(path)), family, hint_channels)
    if path.is_dir():
        info.layout = "diffusers"
    state = _to_diffusers(tensors, info)
    if info.layout == "control_lora":
        model = _on_base(state, info, base_unet, repr(str(path)))
    else:
        try:
            model = _model_for(state, info.config) if info.config else None
        except (CheckpointError, TypeError, ValueError, KeyError, RuntimeError):
            model = None  # the recorded config does not fit these tensors: rebuild from the shapes
        if model is None:
            model = _model_for(state, infer_config(state))
    model.eval()
    dtype = resolve_dtype(dtype)
    if dtype is not None:
        model.to(dtype)
    set_middle_block_only(model, info.middle_block_only)
    metadata = {**{k: v for k, v in decode(header).items() if k != "config"}, **info.as_metadata()}
    model.colorstroke_metadata = metadata
    if info.polarity_source == "default" and info.hint_channels == HINT_CHANNELS:  # not a 3-channel one to widen
        warnings.warn(unrecorded_polarity_note(repr(str(path)), 'pass polarity="white_on_black" to load_checkpoint'),
                      stacklevel=2)
    return model, metadata

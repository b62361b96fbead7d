"""The 5-channel Color Stroke ControlNet and its files: build, save, convert, load, validate, run.

Host-free (torch, diffusers, safetensors; no ComfyUI or A1111 imports). Entry points:

- ``build_controlnet(unet)``: a new ControlNetModel from an SD 1.5 ``UNet2DConditionModel``;
  ``widen_controlnet`` starts from a 3-channel ControlNet; ``set_middle_block_only`` for the fast mode.
- ``save_checkpoint(controlnet, path, layout="diffusers"|"ldm", dtype=None, metadata=None)``: one
  .safetensors file, atomically; ``save_pretrained`` for a diffusers folder.
- ``load_checkpoint(path, polarity=None)`` -> (ControlNetModel, metadata dict); a file that records no
  edge polarity is taken as black_on_white (the original colour-stroke model) unless ``polarity`` says;
  ``read_metadata(path)``: the ``colorstroke.*`` header entries alone.
- ``inspect_checkpoint`` / ``inspect_state_dict`` -> ``CheckpointInfo`` and ``check_color_stroke`` for
  hosts that load the tensors with their own loader.
- ``model.inference.colorize`` runs it with a diffusers SD 1.5 pipeline (imported on use).
"""
from .build import build_controlnet, controlnet_residuals, middle_block_only, set_middle_block_only, widen_controlnet
from .checkpoint import (
    LAYOUTS,
    export_state_dict,
    load_checkpoint,
    read_metadata,
    resolve_dtype,
    save_checkpoint,
    save_pretrained,
)
from .errors import CheckpointError
from .metadata import PREFIX as METADATA_PREFIX
from .validate import (
    CheckpointInfo,
    check_color_stroke,
    fill_note,
    inspect_checkpoint,
    inspect_state_dict,
    trained_with_fill,
)

__all__ = [
    "LAYOUTS", "METADATA_PREFIX", "CheckpointError", "CheckpointInfo", "build_controlnet", "check_color_stroke",
    "controlnet_residuals", "export_state_dict", "fill_note", "inspect_checkpoint", "inspect_state_dict",
    "load_checkpoint", "middle_block_only", "read_metadata", "resolve_dtype", "save_checkpoint", "save_pretrained",
    "set_middle_block_only", "trained_with_fill", "widen_controlnet",
]

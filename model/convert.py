"""Convert a ControlNet checkpoint between layouts and dtypes, and a full one into a control-LoRA.

    python -m model.convert IN OUT --layout ldm|diffusers|pretrained|control_lora [--dtype fp16|bf16|fp32]
                               [--polarity white_on_black|black_on_white] [--allow-non-sd15]
                               [--base BASE [--base_config CONFIG]] [--control_lora_rank R]

Run from the repository root. IN: any file ``model.load_checkpoint`` reads (.safetensors in any layout,
a whole-model ldm checkpoint, .ckpt/.pth/.bin through torch.load(weights_only=True), a diffusers folder).
OUT: a .safetensors file (layouts ``ldm``/``diffusers``/``control_lora``) or a folder (``pretrained``).

A control-LoRA (``model.control_lora``) is made of differences from a base UNet, so ``--layout control_lora``, and
an IN that is a control-LoRA, need ``--base``: the SD 1.5 / SDXL checkpoint the model was trained from (a diffusers
folder, or a single file with ``--base_config`` its diffusers config folder). Each layer's difference is cut to
rank ``--control_lora_rank`` (truncated SVD); the conversion prints what that costs: the relative error of the
layers' differences and of the ControlNet's residuals on a random probe (0 = exact, 1 = as if untrained).

The edge polarity is part of the hint contract, and OUT always records it: IN's recorded one, else
``--polarity``. An IN that records none and no ``--polarity`` is refused (exit code 2, nothing written),
since a guess would from then on count as recorded. Every other ``colorstroke.*`` entry of IN (training
step, Canny thresholds, base model, resolution, custom keys, ...) is carried over as it is, except what
the conversion itself settles (layout, tensor config, hint channels: ``model.save_checkpoint`` writes those).
"""
from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

from . import (
    METADATA_PREFIX,
    CheckpointError,
    CheckpointInfo,
    build_controlnet,
    load_checkpoint,
    read_metadata,
    save_checkpoint,
    save_pretrained,
)
from ._contract import BLACK_ON_WHITE, EDGE_POLARITIES, WHITE_ON_BLACK, HintError, resolve_polarity
from .control_lora import approximate_with_low_rank, residual_error
from .families import family_to_check
from .validate import check_family_fits


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m model.convert", description=__doc__.split("\n\n")[0])
    parser.add_argument("input", help="the checkpoint to read")
    parser.add_argument("output", help="the .safetensors file (or folder for --layout pretrained) to write")
    parser.add_argument("--layout", choices=("ldm", "diffusers", "pretrained", "control_lora"), default="ldm",
                        help="ldm: control_model.* names (ComfyUI, A1111, Forge); diffusers: ControlNetModel names; "
                             "pretrained: a diffusers save_pretrained folder; control_lora: low-rank differences from "
                             "--base, which ComfyUI, A1111 and Forge rebuild on the checkpoint they sample "
                             "(default: ldm)")
    parser.add_argument("--base", default=None,
                        help="the base the model was trained from (diffusers folder or single file): needed for "
                             "--layout control_lora and to read a control-LoRA")
    parser.add_argument("--base_config", default=None,
                        help="a single-file --base's diffusers config folder (its unet/config.json), as the trainer's")
    parser.add_argument("--control_lora_rank", type=int, default=128,
                        help="rank of each layer's difference in a control-LoRA (default 128, Stability's SDXL "
                             "control-LoRAs' smaller size; higher is closer to the full model and larger)")
    parser.add_argument("--dtype", choices=("fp32", "fp16", "bf16"), default=None, help="default: keep the input's")
    parser.add_argument("--polarity", choices=EDGE_POLARITIES, default=None,
                        help="edge polarity to record when the input records none (required then): black_on_white "
                             "for the original colour-stroke model, white_on_black for models trained by this project")
    parser.add_argument("--allow-non-sd15", action="store_true",
                        help="accept models of no family's full size (tiny test and demo models)")
    return parser.parse_args(argv)


def load_unet(path, config=None):
    """The diffusers UNet of a base: a diffusers folder's ``unet``, or a single file read with ``config`` (a local
    diffusers folder holding ``unet/config.json``; nothing is downloaded)."""
    from diffusers import UNet2DConditionModel

    path = Path(path)
    if path.is_dir():
        return UNet2DConditionModel.from_pretrained(str(path), subfolder="unet")
    if not path.is_file():
        raise CheckpointError(f"--base {str(path)!r} does not exist; pass the SD 1.5 or SDXL checkpoint the model "
                              "was trained from (a diffusers folder or a single file)")
    if config is None:
        raise CheckpointError(f"--base {str(path)!r} is a single file: pass --base_config, a local diffusers folder of "
                              "its family (its unet/config.json), since nothing is downloaded")
    return UNet2DConditionModel.from_single_file(str(path), config=str(config), subfolder="unet",
                                                 local_files_only=True)


def to_control_lora(controlnet, unet, rank: int) -> tuple[object, dict[str, float]]:
    """(a low-rank copy of ``controlnet`` on ``unet``, {"weight_error", "residual_error"}): see
    ``model.control_lora.approximate_with_low_rank`` and ``residual_error`` (probed at the UNet's own latent size)."""
    approximation = copy.deepcopy(controlnet)
    base = build_controlnet(unet, controlnet.config.conditioning_channels,
                            list(controlnet.config.conditioning_embedding_out_channels))
    report = approximate_with_low_rank(approximation, base, rank)
    report["residual_error"] = residual_error(controlnet, approximation, latent_size=unet.config.sample_size)
    return approximation, report


def check_full_size(metadata: dict, source: str) -> None:
    """CheckpointError unless the model ``load_checkpoint`` described in ``metadata`` has its family's full size."""
    info = CheckpointInfo(kind="controlnet", family=metadata["family"],
                          cross_attention_dim=metadata["cross_attention_dim"])
    check_family_fits(info, source, family_to_check(info.family))


def edge_polarity(recorded: dict[str, str], given: str | None, source: str) -> str:
    """The polarity OUT records: the one ``recorded`` in IN, else ``given`` (--polarity).

    Raises CheckpointError when IN records none and none was given. A ``given`` that IN contradicts is
    reported on stderr and ignored: the file knows how it was trained.
    """
    value = recorded.get(METADATA_PREFIX + "edge_polarity")
    polarity, decided_by = resolve_polarity(value if value in EDGE_POLARITIES else None, given)
    if decided_by == "default":
        raise CheckpointError(
            f"{source} records no edge polarity: pass --polarity {BLACK_ON_WHITE} for the original colour-stroke "
            f"model, or --polarity {WHITE_ON_BLACK} for a model trained with white-on-black edges (this project's)")
    if decided_by == "metadata" and given not in (None, polarity):
        print(f"note: {source} records edge polarity {polarity}; --polarity {given} is ignored", file=sys.stderr)
    return polarity


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        recorded = read_metadata(args.input)
        polarity = edge_polarity(recorded, args.polarity, args.input)
        is_lora = recorded.get(METADATA_PREFIX + "layout") == "control_lora"
        if args.base is None and (args.layout == "control_lora" or is_lora):
            what = f"{args.input} is a control-LoRA: it" if is_lora else "--layout control_lora"
            raise CheckpointError(f"{what} needs --base, the checkpoint the model was trained from")
        unet = load_unet(args.base, args.base_config) if args.base else None
        controlnet, metadata = load_checkpoint(args.input, polarity=polarity, family=None, base_unet=unet)
        if not args.allow_non_sd15:
            check_full_size(metadata, repr(args.input))
        carried = {k: v for k, v in recorded.items()
                   if k.removeprefix(METADATA_PREFIX) not in ("lora_rank", "lora_targets")}
        carried[METADATA_PREFIX + "edge_polarity"] = polarity
        if args.layout == "control_lora":
            if args.control_lora_rank < 1:
                raise CheckpointError(f"--control_lora_rank must be 1 or more, got {args.control_lora_rank}")
            controlnet, report = to_control_lora(controlnet, unet, args.control_lora_rank)
            print(f"rank {args.control_lora_rank}: relative error of the layers' differences "
                  f"{report['weight_error']:.4f}, of the residuals on a random probe {report['residual_error']:.4f} "
                  "(0 = exact; 1 = as if untrained; taken against --base: use the base the model was trained from)")
        if args.layout == "pretrained":
            written = save_pretrained(controlnet, args.output, dtype=args.dtype, metadata=carried)
        else:
            written = save_checkpoint(controlnet, args.output, layout=args.layout, dtype=args.dtype, metadata=carried)
    except (CheckpointError, HintError, OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {written} (layout {args.layout}, edge polarity {polarity}, {args.dtype or 'dtype kept'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

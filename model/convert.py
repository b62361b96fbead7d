"""Convert a ControlNet checkpoint between layouts and dtypes.

    python -m model.convert IN OUT --layout ldm|diffusers|pretrained [--dtype fp16|bf16|fp32]
                               [--polarity white_on_black|black_on_white] [--allow-non-sd15]

Run from the repository root. IN: any file ``model.load_checkpoint`` reads (.safetensors in either layout,
a whole-model ldm checkpoint, .ckpt/.pth/.bin through torch.load(weights_only=True), a diffusers folder).
OUT: a .safetensors file (layouts ``ldm``/``diffusers``) or a folder (``pretrained``).

The edge polarity is part of the hint contract, and OUT always records it: IN's recorded one, else
``--polarity``. An IN that records none and no ``--polarity`` is refused (exit code 2, nothing written),
since a guess would from then on count as recorded. Every other ``colorstroke.*`` entry of IN (training
step, Canny thresholds, base model, resolution, custom keys, ...) is carried over as it is, except what
the conversion itself settles (layout, tensor config, hint channels: ``model.save_checkpoint`` writes those).
"""
from __future__ import annotations

import argparse
import sys

from . import METADATA_PREFIX, CheckpointError, load_checkpoint, read_metadata, save_checkpoint, save_pretrained
from ._contract import BLACK_ON_WHITE, EDGE_POLARITIES, WHITE_ON_BLACK, HintError, resolve_polarity


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m model.convert", description=__doc__.split("\n\n")[0])
    parser.add_argument("input", help="the checkpoint to read")
    parser.add_argument("output", help="the .safetensors file (or folder for --layout pretrained) to write")
    parser.add_argument("--layout", choices=("ldm", "diffusers", "pretrained"), default="ldm",
                        help="ldm: control_model.* names (ComfyUI, A1111, Forge); diffusers: ControlNetModel names; "
                             "pretrained: a diffusers save_pretrained folder (default: ldm)")
    parser.add_argument("--dtype", choices=("fp32", "fp16", "bf16"), default=None, help="default: keep the input's")
    parser.add_argument("--polarity", choices=EDGE_POLARITIES, default=None,
                        help="edge polarity to record when the input records none (required then): black_on_white "
                             "for the original colour-stroke model, white_on_black for models trained by this project")
    parser.add_argument("--allow-non-sd15", action="store_true",
                        help="accept cross-attention widths other than SD 1.5's 768 (tests, experiments)")
    return parser.parse_args(argv)


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
        controlnet, _ = load_checkpoint(args.input, polarity=polarity, family=None if args.allow_non_sd15 else "sd15")
        carried = {**recorded, METADATA_PREFIX + "edge_polarity": polarity}
        if args.layout == "pretrained":
            written = save_pretrained(controlnet, args.output, dtype=args.dtype, metadata=carried)
        else:
            written = save_checkpoint(controlnet, args.output, layout=args.layout, dtype=args.dtype, metadata=carried)
    except (CheckpointError, HintError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {written} (layout {args.layout}, edge polarity {polarity}, {args.dtype or 'dtype kept'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Convert a ControlNet checkpoint between layouts and dtypes.

    python -m training.convert IN OUT --layout ldm|diffusers|pretrained [--dtype fp16|bf16|fp32]
                               [--polarity white_on_black|black_on_white] [--allow-non-sd15]

Run from the repository root. IN: any file ``model.load_checkpoint`` reads (.safetensors in either layout,
a whole-model ldm checkpoint, .ckpt/.pth/.bin through torch.load(weights_only=True), a diffusers folder).
OUT: a .safetensors file (layouts ``ldm``/``diffusers``) or a folder (``pretrained``). ``--polarity`` is
recorded when IN does not record its edge polarity. The metadata of IN (training step, Canny
thresholds, ...) is carried over.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the repo root importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from model import CheckpointError, load_checkpoint, save_checkpoint, save_pretrained  # noqa: E402
from preprocessors import EDGE_POLARITIES, HintError  # noqa: E402

_CARRIED = ("edge_polarity", "training_step", "canny_low", "canny_high", "base_family")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.convert", description=__doc__.split("\n\n")[0])
    parser.add_argument("input", help="the checkpoint to read")
    parser.add_argument("output", help="the .safetensors file (or folder for --layout pretrained) to write")
    parser.add_argument("--layout", choices=("ldm", "diffusers", "pretrained"), default="ldm",
                        help="ldm: control_model.* names (ComfyUI, A1111, Forge); diffusers: ControlNetModel names; "
                             "pretrained: a diffusers save_pretrained folder (default: ldm)")
    parser.add_argument("--dtype", choices=("fp32", "fp16", "bf16"), default=None, help="default: keep the input's")
    parser.add_argument("--polarity", choices=EDGE_POLARITIES, default=None,
                        help="edge polarity to record when the input records none")
    parser.add_argument("--allow-non-sd15", action="store_true",
                        help="accept cross-attention widths other than SD 1.5's 768 (tests, experiments)")
    args = parser.parse_args(argv)
    try:
        controlnet, metadata = load_checkpoint(args.input, polarity=args.polarity, sd15_only=not args.allow_non_sd15)
        carried = {k: metadata[k] for k in _CARRIED if metadata.get(k) is not None}
        if args.layout == "pretrained":
            written = save_pretrained(controlnet, args.output, dtype=args.dtype, metadata=carried)
        else:
            written = save_checkpoint(controlnet, args.output, layout=args.layout, dtype=args.dtype, metadata=carried)
    except (CheckpointError, HintError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {written} (layout {args.layout}, edge polarity {carried['edge_polarity']}, "
          f"{args.dtype or 'dtype kept'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

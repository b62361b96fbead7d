"""Build a hint from a line drawing and a stroke layer and write what the model sees.

    python -m preprocessors [--lineart PNG] [--strokes PNG] [--out DIR]

Without arguments it uses the bundled example in ``example_workflows/``. Writes ``DIR/hint.npy``
(5xHxW float32, the contract) and ``DIR/hint_preview.png``.
"""
from __future__ import annotations

import argparse
import pathlib
import sys

import numpy as np
from PIL import Image

from . import (
    DEFAULT_CANNY,
    DEFAULT_EDGE_POLARITY,
    EDGE_POLARITIES,
    EDGE_SOURCES,
    HintError,
    hint_preview,
    inference_hint,
    load_image,
    to_model_polarity,
)

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "example_workflows"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m preprocessors", description=__doc__.split("\n")[0])
    parser.add_argument("--lineart", default=EXAMPLES / "lineart.png", type=pathlib.Path, help="line drawing image")
    parser.add_argument("--strokes", default=EXAMPLES / "strokes.png", type=pathlib.Path,
                        help="stroke layer: a transparent PNG whose alpha marks the strokes")
    parser.add_argument("--out", default=pathlib.Path("demo_out"), type=pathlib.Path, help="output folder")
    parser.add_argument("--low", type=float, default=DEFAULT_CANNY.low,
                        help="Canny low threshold (0-255 gradient units)")
    parser.add_argument("--high", type=float, default=DEFAULT_CANNY.high, help="Canny high threshold")
    parser.add_argument("--edge-source", choices=EDGE_SOURCES, default="canny",
                        help="canny: Canny of the drawing; lineart: the drawing itself as the edge map")
    parser.add_argument("--polarity", choices=EDGE_POLARITIES, default=DEFAULT_EDGE_POLARITY,
                        help="edge polarity of the model hint.npy is for (the preview is always white on black)")
    args = parser.parse_args(argv)
    try:
        hint = inference_hint(load_image(args.lineart), load_image(args.strokes), low=args.low, high=args.high,
                              edge_source=args.edge_source)
    except HintError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    np.save(args.out / "hint.npy", to_model_polarity(hint, args.polarity))
    Image.fromarray(hint_preview(hint)).save(args.out / "hint_preview.png")
    print(f"hint {tuple(hint.shape)} -> {args.out / 'hint.npy'}; preview -> {args.out / 'hint_preview.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The model-free systems of toy world v2: our flats (``preprocessors.fill_strokes``) against a plain flood fill,
on held-out v2 drawings with clean and sloppy strokes (``world_v2``).

    python -m benchmarks.toyworld.flats [--cases 32] [--size 128] [--gap 4] --out DIR

Writes ``DIR/flats.json`` (``systems`` -> name -> region_error, pixel_error, edge_f1, leak; each also on the sloppy
strokes as ``NAME_sloppy``) and ``DIR/flats_grid.png`` (drawing | strokes | fill_only | sloppy strokes |
fill_only on them | flood_fill | truth) and prints a table. Seconds on two CPU cores; no model is trained.
"""
from __future__ import annotations

import argparse
import json
import pathlib

import numpy as np
from PIL import Image

from preprocessors import canny, fill_strokes
from training.metrics import edge_f1

from .evaluate import HELD_OUT_SEED
from .flood_fill import flood_fill
from .metrics import EDGE_TOLERANCE, leak, pixel_error, region_error
from .world_v2 import sample_v2, user_strokes_v2

METRICS = ("region_error", "pixel_error", "edge_f1", "leak")


def flats_on_drawing(lineart: np.ndarray, layer: np.ndarray) -> np.ndarray:
    """HxWx3 uint8: the drawing with every coloured pixel of ``layer`` (premultiplied) in its straight colour."""
    alpha = layer[..., 3:]
    colour = np.clip(layer[..., :3] / np.maximum(alpha, 1e-6), 0.0, 1.0) * 255.0
    return np.where(alpha > 0, np.round(colour), lineart).astype(np.uint8)


def measure_v2(result: np.ndarray, truth, strokes: np.ndarray, intended: np.ndarray) -> dict:
    """The v2 metrics of ``result`` (HxWx3 uint8); ``intended``: the clean strokes, whose areas are the ones meant
    (for sloppy strokes too)."""
    return {"region_error": region_error(result, truth.regions, truth.colours, intended),
            "pixel_error": pixel_error(result, truth.image, truth.regions, intended),
            "edge_f1": edge_f1(canny(result), canny(truth.lineart), EDGE_TOLERANCE),
            "leak": leak(result, truth.regions, truth.colours, intended)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.toyworld.flats", description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, type=pathlib.Path)
    parser.add_argument("--cases", type=int, default=32)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--gap", type=int, default=4, help="fill_strokes' gap at this size")
    args = parser.parse_args(argv)
    rows, tiles = {}, []
    for index in range(args.cases):
        truth = sample_v2(HELD_OUT_SEED + index, args.size)
        clean, sloppy = user_strokes_v2(truth, np.random.default_rng(HELD_OUT_SEED + index))
        results = {}
        for suffix, strokes in (("", clean), ("_sloppy", sloppy)):
            flats = fill_strokes(truth.lineart, strokes, gap=args.gap)
            results["fill_only" + suffix] = flats_on_drawing(truth.lineart, flats)
            results["flood_fill" + suffix] = flood_fill(truth.lineart, strokes)
        for name, result in results.items():
            rows.setdefault(name, []).append(measure_v2(result, truth, sloppy if "sloppy" in name else clean, clean))
        if index < 6:
            on_white = [flats_on_drawing(np.full_like(truth.lineart, 255), layer) for layer in (clean, sloppy)]
            tiles.append(np.concatenate([truth.lineart, on_white[0], results["fill_only"], on_white[1],
                                         results["fill_only_sloppy"], results["flood_fill"], truth.image], axis=1))
    systems = {name: {metric: float(np.nanmean([row[metric] for row in found])) for metric in METRICS}
               for name, found in rows.items()}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "flats.json").write_text(json.dumps({"systems": systems, "cases": args.cases, "size": args.size,
                                                    "gap": args.gap}, indent=2), encoding="utf-8")
    Image.fromarray(np.concatenate(tiles, axis=0)).save(args.out / "flats_grid.png")
    print(f"{'system':<20}" + "".join(f"{metric:>14}" for metric in METRICS))
    for name, scores in systems.items():
        print(f"{name:<20}" + "".join(f"{scores[metric]:>14.3f}" for metric in METRICS))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

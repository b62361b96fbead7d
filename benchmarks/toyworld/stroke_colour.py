"""Toy world v2: what a painted colour says about its area, against what the training strokes teach.

    python -m benchmarks.toyworld.stroke_colour [--cases 32] [--size 128] --out DIR

A person paints an area's base colour (``world_v2.user_strokes_v2``); the truth is that colour shaded (0.55-1 of
it). Measured on the held-out drawings, per stroked area (CIEDE2000 against the truth's area mean, and the L*
difference): the painted colour as it is (what a model that copies strokes gets), and scaled by the area's true
mean shading (the floor left by the stroke jitter). Measured on training drawings (the seeds the ControlNet trains
on) with the hint the trainer builds (``training_hint``, the toy's stroke flags, no blur): each stroke colour mode's
(``StrokeParams.colour``) distance and L* difference to the area's base colour (what a person would have painted
there): the gap a model trained on that mode must bridge at inference. Writes ``DIR/stroke_colour.json``.
Seconds on one core; no model.
"""
from __future__ import annotations

import argparse
import json
import pathlib

import numpy as np
from skimage.color import deltaE_ciede2000, rgb2lab

from preprocessors import StrokeParams
from preprocessors.hints import training_hint

from .evaluate import HELD_OUT_SEED
from .stages import DATA_SEEDS
from .world_v2 import sample_v2, user_strokes_v2

TRAINING_STROKES = {"count_min": 4, "count_max": 32, "count_pow2": True, "thickness": (1, 2), "blur_prob": 0.0}


def _lab(rgb: np.ndarray) -> np.ndarray:
    return rgb2lab(np.asarray(rgb, np.float32).reshape(-1, 1, 3) / 255.0).reshape(-1, 3)


def _distance(colours: np.ndarray, targets: np.ndarray) -> dict:
    """Mean CIEDE2000 and mean L* difference (colours minus targets) of two Nx3 0-255 arrays."""
    ours, theirs = _lab(colours), _lab(targets)
    return {"delta_e": float(deltaE_ciede2000(ours, theirs).mean()), "delta_l": float((ours - theirs)[:, 0].mean())}


def painted_against_truth(cases: int, size: int) -> dict:
    """The held-out areas' painted colours against their truth means, as painted and with the true shading."""
    painted, shaded, truths = [], [], []
    for index in range(cases):
        truth = sample_v2(HELD_OUT_SEED + index, size)
        clean, _ = user_strokes_v2(truth, np.random.default_rng(HELD_OUT_SEED + index))
        on = clean[..., 3] >= 0.5
        for area in np.unique(truth.regions[on & (truth.regions >= 0)]):
            colour = clean[on & (truth.regions == area)][:, :3].mean(axis=0) * 255.0
            painted.append(colour)
            shaded.append(colour * truth.colours[area] / np.maximum(truth.base_colours[area], 1.0))
            truths.append(truth.colours[area])
    truths = np.array(truths, np.float32)
    return {"areas": len(truths), "as_painted": _distance(np.array(painted), truths),
            "painted_times_true_shading": _distance(np.array(shaded), truths)}


def training_against_painted(cases: int, size: int) -> dict:
    """Each stroke colour mode's training stroke pixels against the base colour of the area under them."""
    scale = size / 512
    found = {}
    for mode in ("pixel", "region", "lit"):
        params = StrokeParams(colour=mode, length_min=max(1, int(200 * scale)), length_max=max(2, int(1000 * scale)),
                              **TRAINING_STROKES)
        colours, bases = [], []
        for index in range(cases):
            truth = sample_v2(DATA_SEEDS + index, size)
            hint = training_hint(truth.image, np.random.default_rng(index), params)
            on = (hint[4] >= 0.5) & (truth.regions >= 0)
            colours.append((hint[1:4, on] / hint[4, on]).T * 255.0)
            bases.append(truth.base_colours[truth.regions[on]])
        found[mode] = _distance(np.concatenate(colours), np.concatenate(bases).astype(np.float32))
    return found


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.toyworld.stroke_colour",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, type=pathlib.Path)
    parser.add_argument("--cases", type=int, default=32)
    parser.add_argument("--size", type=int, default=128)
    args = parser.parse_args(argv)
    report = {"cases": args.cases, "size": args.size,
              "held_out_painted_vs_truth_mean": painted_against_truth(args.cases, args.size),
              "training_strokes_vs_base_colour": training_against_painted(args.cases, args.size)}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "stroke_colour.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

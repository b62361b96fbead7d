"""Toy world v2: where a fill model's region error lies — lightness, saturation, or areas that took another colour.

    python -m benchmarks.toyworld.colour_split --out RUN [--models controlnet_fill,controlnet_lit] [--cases 32]
        [--strength 1]

For each model folder in RUN (a finished v2 run; levers from ``v2_lever``), on the held-out drawings with the clean
strokes filled as the model was trained: per stroked area, its mean colour in CIELAB against the truth's area mean
and the painted colour. Reports the means of CIEDE2000 (``delta_e``), L* against the truth (``l_vs_truth``) and
against the painted colour (``l_vs_painted``: how much the model shades it), chroma against the truth
(``chroma_vs_truth``: below 0 = paler), the a*b* distance (``ab_distance``), and the tail: ``median_delta_e``,
``share_above_20``, ``worst_tenth_delta_e``; and ``by_size``: the same areas binned by their share of the picture
(``SIZE_BINS``), each bin's ``areas``, ``delta_e``, ``share_above_20`` and ``flats_delta_e`` (the flats' own
colour there, ``fill_only``, against the truth: whether the fill or the model is off). Writes RUN/colour_split.json
(``colour_split_strength_S.json`` at another ``--strength``).
"""
from __future__ import annotations

import argparse
import json

import numpy as np
from skimage.color import deltaE_ciede2000, rgb2lab

from .v2 import add_run_arguments, fill_only, filled_results, run_model, run_parts

SIZE_BINS = (0.0, 0.025, 0.05, 0.1, 1.0)  # an area's share of the picture: bin edges


def _lab(rgb) -> np.ndarray:
    return rgb2lab(np.asarray(rgb, np.float32).reshape(-1, 1, 3) / 255.0).reshape(-1, 3)


def split(images: list, cases: list) -> dict:
    """The figures above for ``images`` (HxWx3 uint8, one per case)."""
    rows = []
    for image, case in zip(images, cases, strict=True):
        on = case.clean[..., 3] >= 0.5
        regions = case.truth.regions
        flats = fill_only(case, case.clean)
        for area in np.unique(regions[on & (regions >= 0)]):
            inside = regions == area
            ours, flat = _lab(np.stack([image[inside].mean(axis=0), flats[inside].mean(axis=0)]))
            truth = _lab(case.truth.colours[area])[0]
            painted = _lab(case.clean[on & inside][:, :3].mean(axis=0) * 255.0)[0]
            rows.append((deltaE_ciede2000(ours[None], truth[None])[0], ours[0] - truth[0], ours[0] - painted[0],
                         np.hypot(*ours[1:]) - np.hypot(*truth[1:]), np.hypot(*(ours[1:] - truth[1:])),
                         deltaE_ciede2000(flat[None], truth[None])[0], inside.mean()))
    table = np.array(rows, np.float64)
    errors = np.sort(table[:, 0])
    means = table.mean(axis=0)
    return {"areas": len(table), "delta_e": means[0], "l_vs_truth": means[1], "l_vs_painted": means[2],
            "chroma_vs_truth": means[3], "ab_distance": means[4], "median_delta_e": float(np.median(errors)),
            "share_above_20": float((errors > 20).mean()),
            "worst_tenth_delta_e": float(errors[-max(1, len(errors) // 10):].mean()),
            "by_size": _by_size(table[:, 0], table[:, 5], table[:, 6])}


def _by_size(errors: np.ndarray, flats_errors: np.ndarray, shares: np.ndarray) -> dict:
    """{"LOW-HIGH" (percent of the picture): areas, delta_e, share_above_20, flats_delta_e} per ``SIZE_BINS`` bin."""
    bins = {}
    for low, high in zip(SIZE_BINS[:-1], SIZE_BINS[1:], strict=True):
        own = (shares >= low) & (shares < high)
        if own.any():
            bins[f"{low * 100:g}-{high * 100:g}%"] = {
                "areas": int(own.sum()), "delta_e": float(errors[own].mean()),
                "share_above_20": float((errors[own] > 20).mean()), "flats_delta_e": float(flats_errors[own].mean())}
    return bins


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.toyworld.colour_split",
                                     description=__doc__.split("\n\n")[0])
    add_run_arguments(parser)
    parser.add_argument("--models", default="controlnet_fill", help="model folders in RUN, comma-separated")
    parser.add_argument("--strength", type=float, default=1.0, help="ControlNet strength (default 1, as the run)")
    args = parser.parse_args(argv)
    parts, cases = run_parts(args)
    report = {}
    for name in (n.strip() for n in args.models.split(",") if n.strip()):
        model = run_model(args, name)
        images = filled_results(parts, model, cases, "", args.steps, strength=args.strength)
        report[name] = {key: value if isinstance(value, dict) else float(value)
                        for key, value in split(images, cases).items()}
        print(name, json.dumps(report[name]), flush=True)
    name = "colour_split.json" if args.strength == 1 else f"colour_split_strength_{args.strength:g}.json"
    (args.out / name).write_text(json.dumps(report, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

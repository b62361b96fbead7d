"""Toy world v2: one recipe lever against the fill model of a finished run, on the same base, data and budget.

    python -m benchmarks.toyworld.v2_lever --out RUN --name NAME --recipe="FLAGS" [--evaluate_only]

RUN is a finished ``python -m benchmarks.toyworld --world v2 --out RUN`` folder. Trains ``RUN/controlnet_NAME``
with the run's settings and the fill recipe plus FLAGS (``training/train.py`` flags, e.g.
``--strokes.colour=lit``), measures it as the run measures ``ours_fill`` (``v2.fill_model_results``: clean and
sloppy strokes filled, and no strokes) and writes ``RUN/levers.json``: name -> flags, the v2 metrics per system,
the stroke effect, the training seconds, next to the run's own ``ours_fill``. About 70 minutes on two CPU cores
at the v2 run's 9360 steps.
"""
from __future__ import annotations

import argparse
import json
import pathlib
import shlex
from dataclasses import replace

from .base_model import BaseSettings
from .evaluate import base_parts, load_exported
from .stages import EXPORT_NAME, Settings, train_controlnet
from .v2 import FILL_RECIPE, STROKE_SETS, fill_model_results, held_out_v2, scores


def run_settings(results: dict) -> Settings:
    """The settings a finished v2 run was trained with (``results``: its results.json)."""
    saved = results["settings"]
    return Settings(**{**saved, "base": BaseSettings(**saved["base"])})


def measure_lever(run: pathlib.Path, settings: Settings, name: str, flags: list[str], evaluate_only: bool) -> dict:
    """Train (unless ``evaluate_only``) and measure the lever ``name`` on the run in ``run`` (trained with
    ``settings``); returns its levers.json entry."""
    folder = run / f"controlnet_{name}"
    seconds = None
    if not evaluate_only:
        seconds = round(train_controlnet(replace(settings, recipe=[*settings.recipe, *FILL_RECIPE, *flags]),
                                         run / "base", run / "images", folder), 1)
    parts = base_parts(run / "base")
    cases = held_out_v2(settings.eval_cases, settings.base.image_size)
    model = load_exported(folder / f"{EXPORT_NAME}.safetensors")
    results = {}
    for suffix in STROKE_SETS:
        results.update({system + suffix: images for system, images in
                        fill_model_results(parts, model, cases, suffix, settings.inference_steps).items()})
    systems = scores(results, cases)
    effect = systems["ours_fill_without_strokes"]["region_error"] - systems["ours_fill"]["region_error"]
    return {"flags": flags, "systems": systems, "train_s": seconds, "stroke_effect": effect}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.toyworld.v2_lever",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, type=pathlib.Path, help="a finished v2 run folder")
    parser.add_argument("--name", required=True, help="the lever's name (its folder is RUN/controlnet_NAME)")
    parser.add_argument("--recipe", default="",
                        help='trainer flags on top of the fill recipe, given as --recipe="--strokes.colour=lit"')
    parser.add_argument("--evaluate_only", action="store_true", help="measure an already trained lever again")
    args = parser.parse_args(argv)
    if not (args.out / "results.json").is_file():
        raise SystemExit(f"{args.out} holds no finished v2 run (results.json): run python -m benchmarks.toyworld "
                         "--world v2 --out RUN first")
    results = json.loads((args.out / "results.json").read_text(encoding="utf-8"))
    entry = measure_lever(args.out, run_settings(results), args.name, shlex.split(args.recipe), args.evaluate_only)
    record = args.out / "levers.json"
    levers = json.loads(record.read_text(encoding="utf-8")) if record.is_file() else {}
    reference = results["systems"]
    levers["ours_fill (the run)"] = {name: reference[name] for name in ("ours_fill", "ours_fill_sloppy",
                                                                         "ours_fill_without_strokes", "base")}
    levers[args.name] = entry
    record.write_text(json.dumps(levers, indent=2, allow_nan=True), encoding="utf-8")
    for system, values in entry["systems"].items():
        print(f"{args.name} {system}: " + ", ".join(f"{k} {v:.3f}" for k, v in values.items()), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

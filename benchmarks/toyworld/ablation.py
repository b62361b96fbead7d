"""Which recipe makes the strokes set the colour: the same ControlNet training budget for each recipe.

    python -m benchmarks.toyworld.ablation --out DIR [--steps N] [--rows a,b] [--quick]

Every row trains from the same base (``DIR/base``, pretrained once or reused from a full run in DIR), on
the same images, with the same steps, batch, learning rate and seeds; rows differ only in their recipe flags,
each on top of ``PLAIN`` (the plain recipe spelled out, so that a change of the trainer's defaults does not
change a row). A row is measured on held-out drawings: region and stroke colour error, the stroke effect
(region error without strokes minus with them), edge F1, the per-timestep stroke use, and wall seconds.

Rows are appended to ``DIR/ablation.json`` as they finish; a row already there with the same settings is
kept, so an interrupted ablation continues where it stopped.
"""
from __future__ import annotations

import argparse
import json
import logging
import pathlib
import sys
import time
from dataclasses import asdict, replace

from .evaluate import (
    base_parts,
    held_out_cases,
    load_exported,
    results_with_and_without_strokes,
    scores_and_effect,
    stroke_use,
)
from .stages import EXPORT_NAME, Settings, quick_settings, reuse_or_pretrain_base, train_controlnet, write_images

PLAIN = ["--timestep_sampling=uniform", "--timestep_uniform_prob=0", "--new_parts_lr_scale=1", "--min_snr_gamma=0",
         "--x0_weight_floor=0", "--stroke_loss_weight=0", "--stroke_density_start=1", "--stroke_density_steps=0",
         "--strokes.colour=pixel", "--strokes.empty_prob=0", "--colour_phase_start=1"]


def recipes(steps: int) -> dict[str, list[str]]:
    """Row name -> its flags on top of ``PLAIN``: the plain recipe, each change alone, and combinations."""
    return {
        "plain": [],
        "cubic timesteps": ["--timestep_sampling=cubic"],
        "high timesteps": ["--timestep_sampling=high"],
        "new parts lr x10": ["--new_parts_lr_scale=10"],
        "min-SNR-5": ["--min_snr_gamma=5"],
        "x0 weight floor 1": ["--x0_weight_floor=1"],
        "stroke loss weight 4": ["--stroke_loss_weight=4"],
        "region-mean strokes": ["--strokes.colour=region"],
        "no strokes 1/8": ["--strokes.empty_prob=0.125"],
        "dense to sparse": ["--stroke_density_start=4", f"--stroke_density_steps={max(1, steps // 2)}"],
        "edges, then colour from 0.12 (the default)": ["--new_parts_lr_scale=10", "--colour_phase_start=0.12"],
        "combined": ["--timestep_sampling=cubic", "--new_parts_lr_scale=10", "--x0_weight_floor=1",
                     "--stroke_loss_weight=4", "--strokes.colour=region"],
    }


def measure_row(parts: dict, exported: pathlib.Path, cases, steps: int) -> dict:
    """The row's figures on ``cases``: mean metrics with and without strokes, stroke effect, stroke use."""
    controlnet = load_exported(exported)
    figures = scores_and_effect(*results_with_and_without_strokes(parts, controlnet, cases, 1.0, steps), cases)
    return {**figures, "region_error_without_strokes": figures["region_error"] + figures["stroke_effect"],
            "stroke_use": [round(v, 5) for v in stroke_use(parts, controlnet, cases)]}


def run(out: pathlib.Path, settings: Settings, names: list[str] | None = None) -> list[dict]:
    """Train and measure each recipe row (all, or ``names`` in their order) into ``out``; returns the rows of
    ablation.json."""
    out.mkdir(parents=True, exist_ok=True)
    base_dir = out / "base"
    base_summary = reuse_or_pretrain_base(base_dir, settings.base)
    data_dir = write_images(out / "images", settings.train_images, settings.base.image_size)
    table_path = out / "ablation.json"
    saved = json.loads(table_path.read_text(encoding="utf-8")) if table_path.is_file() else {"rows": []}
    shared = {"settings": asdict(replace(settings, recipe=[])), "base": base_summary}
    rows = [row for row in saved["rows"] if row["shared"] == shared["settings"]]
    done = {row["recipe"] for row in rows}
    parts = base_parts(base_dir)
    cases = held_out_cases(settings.eval_cases, settings.base.image_size)
    rows_by_name = recipes(settings.controlnet_steps)
    unknown = sorted(set(names or ()) - set(rows_by_name))
    if unknown:
        raise SystemExit(f"--rows: no recipe named {unknown}; the rows are {list(rows_by_name)}")
    for name in names or rows_by_name:  # in the order asked for
        flags = rows_by_name[name]
        if name in done:
            continue
        run_dir = out / "ablation" / name.replace(" ", "_").replace("/", "_")
        seconds = train_controlnet(replace(settings, recipe=PLAIN + flags), base_dir, data_dir, run_dir)
        started = time.perf_counter()
        figures = measure_row(parts, run_dir / f"{EXPORT_NAME}.safetensors", cases, settings.inference_steps)
        rows.append({"recipe": name, "flags": flags, **figures, "train_s": round(seconds, 1),
                     "evaluate_s": round(time.perf_counter() - started, 1), "shared": shared["settings"]})
        table_path.write_text(json.dumps({**shared, "rows": rows}, indent=2), encoding="utf-8")
        logging.info("%s: %s", name, table([rows[-1]]).splitlines()[-1])
    return rows


def table(rows: list[dict]) -> str:
    """The rows as a text table."""
    lines = [f"{'recipe':<24}{'region':>8}{'stroke':>8}{'effect':>8}{'edge F1':>9}{'train s':>9}"]
    for row in rows:
        lines.append(f"{row['recipe']:<24}{row['region_error']:>8.2f}{row['stroke_error']:>8.2f}"
                     f"{row['stroke_effect']:>8.2f}{row['edge_f1']:>9.3f}{row['train_s']:>9.0f}")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.toyworld.ablation",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, type=pathlib.Path, help="folder of the base, images and ablation.json")
    parser.add_argument("--steps", type=int, default=None, help="ControlNet steps of every row (default 600)")
    parser.add_argument("--eval_cases", type=int, default=None, help="held-out drawings per row (default 16)")
    parser.add_argument("--rows", default=None, help="comma-separated row names to run (default: all)")
    parser.add_argument("--quick", action="store_true", help="a smoke run of a few minutes (checks that all runs)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    settings = quick_settings() if args.quick else replace(Settings(), controlnet_steps=600, eval_cases=16,
                                                           curve_points=1)
    settings = replace(settings, curve_points=1, controlnet_steps=args.steps or settings.controlnet_steps,
                       eval_cases=args.eval_cases or settings.eval_cases)
    rows = run(args.out, settings, args.rows.split(",") if args.rows else None)
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Toy world v2: the fill-trained ControlNet of a finished run along its checkpoints, and with stroke guidance.

    python -m benchmarks.toyworld.v2_curve --out RUN [--model controlnet_fill] [--cases 32] [--stroke_guidance 2,3]

RUN is a ``python -m benchmarks.toyworld --world v2 --out RUN`` folder. For each checkpoint the run kept
(``MODEL/checkpoints/step-N``; MODEL is the fill model's folder in RUN, or a lever's, ``v2_lever``) and for its
final model (when trained to the end) at each stroke-guidance scale: the v2 metrics
(``benchmarks.toyworld.v2.scores``) on the held-out drawings with the clean strokes, filled as the model was
trained (gap ``FILL_GAP``), 20 DDIM steps as the run. Writes RUN/fill_curve.json (``MODEL_curve.json`` for
another MODEL) and prints each row.
"""
from __future__ import annotations

import argparse
import json

from .v2 import add_run_arguments, filled_results, run_export, run_model, run_parts
from .v2 import scores as v2_scores


def scores(parts: dict, controlnet, cases, steps: int, stroke_guidance: float = 1.0) -> dict:
    """Mean v2 metrics of ``controlnet`` on ``cases`` (clean strokes, filled)."""
    images = filled_results(parts, controlnet, cases, "", steps, stroke_guidance=stroke_guidance)
    return v2_scores({"clean": images}, cases)["clean"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.toyworld.v2_curve",
                                     description=__doc__.split("\n\n")[0])
    add_run_arguments(parser)
    parser.add_argument("--model", default="controlnet_fill", help="the fill-trained model's folder in RUN")
    parser.add_argument("--stroke_guidance", default="2,3", help="scales for the final model, comma-separated")
    args = parser.parse_args(argv)
    parts, cases = run_parts(args)
    report = {"cases": args.cases, "curve": {}, "stroke_guidance": {}}
    for folder in sorted((args.out / args.model / "checkpoints").glob("step-*")):
        step = int(folder.name.split("-")[1])
        report["curve"][step] = scores(parts, run_model(args, folder.relative_to(args.out)), cases, args.steps)
        print(f"step {step}: {report['curve'][step]}", flush=True)
    final = run_model(args, args.model) if run_export(args, args.model).is_file() else None
    for scale in (float(s) for s in args.stroke_guidance.split(",") if s.strip() and final is not None):
        report["stroke_guidance"][scale] = scores(parts, final, cases, args.steps, stroke_guidance=scale)
        print(f"stroke guidance {scale}: {report['stroke_guidance'][scale]}", flush=True)
    name = "fill_curve.json" if args.model == "controlnet_fill" else f"{args.model}_curve.json"
    (args.out / name).write_text(json.dumps(report, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

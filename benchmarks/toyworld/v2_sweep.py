"""Toy world v2: a finished model at several ControlNet strengths, each averaged over sampling seeds.

    python -m benchmarks.toyworld.v2_sweep --out RUN [--models controlnet_fill] [--strengths 1,1.5,2] [--seeds 4]
        [--window all|high|low]

For each model folder in RUN (a finished v2 run; levers from ``v2_lever``) and each strength: the v2 metrics
(``v2.scores``) on the held-out drawings with the clean strokes filled as every host fills them, once per seed
(seed k samples case i with seed 1000 k + i; seed 0 is the run's own), and their mean and sample standard
deviation over the seeds: one seed's 32 cases can leave a region error a whole ΔE from another's, so a lever needs
several seeds to be told apart. ``--window high`` (``low``) applies the strength only at the high-noise (low-noise)
half of the timesteps, t >= T/2 (t < T/2), and 1 at the other: which half of sampling wants more control. Writes
RUN/sweep.json (``sweep_high.json``, ``sweep_low.json``): model -> strength -> ``mean`` / ``sd`` / ``per_seed``
(a sweep with the same cases, seeds and window adds its rows to those already there), and prints each row.
"""
from __future__ import annotations

import argparse
import contextlib
import json

import numpy as np
import torch

from .flats import METRICS
from .v2 import add_run_arguments, filled_results, run_model, run_parts, scores

SEED_STRIDE = 1000  # seed k's first case; more than any case count, so no two seeds share a case's noise
WINDOWS = ("all", "high", "low")


@contextlib.contextmanager
def strength_in_window(controlnet, strength: float, window: str, timesteps: int):
    """While open, ``controlnet``'s residuals are multiplied by ``strength`` at the timesteps of ``window``
    ("high": t >= ``timesteps`` / 2, "low": below) and left as they are elsewhere (a forward hook)."""
    def hook(module, args, kwargs, output):
        step = kwargs["timestep"] if "timestep" in kwargs else args[1]
        high = float(torch.as_tensor(step).flatten()[0]) >= timesteps / 2
        if high != (window == "high"):
            return output
        down, mid = output
        return [residual * strength for residual in down], mid * strength

    handle = controlnet.register_forward_hook(hook, with_kwargs=True)
    try:
        yield
    finally:
        handle.remove()


def results_at(parts: dict, controlnet, cases, steps: int, strength: float, window: str, seed: int) -> list:
    """``filled_results`` at ``strength`` over all timesteps, or in ``window`` only (``strength_in_window``)."""
    if window == "all":
        return filled_results(parts, controlnet, cases, "", steps, strength=strength, seed=seed)
    with strength_in_window(controlnet, strength, window, parts["scheduler"].config.num_train_timesteps):
        return filled_results(parts, controlnet, cases, "", steps, seed=seed)


def seed_spread(per_seed: list[dict]) -> dict:
    """``{"mean": {metric: ...}, "sd": {metric: ...}, "per_seed": per_seed}``; sd is 0 for a single seed."""
    table = np.array([[row[metric] for metric in METRICS] for row in per_seed], np.float64)
    spread = table.std(axis=0, ddof=1) if len(table) > 1 else np.zeros(len(METRICS))
    return {"mean": dict(zip(METRICS, table.mean(axis=0).tolist(), strict=True)),
            "sd": dict(zip(METRICS, spread.tolist(), strict=True)), "per_seed": per_seed}


def strength_list(text: str) -> list[float]:
    """``--strengths``: comma-separated ControlNet strengths >= 0."""
    try:
        strengths = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of numbers, e.g. 1,1.5,2") from None
    if not strengths or min(strengths) < 0:
        raise argparse.ArgumentTypeError(f"give one or more strengths >= 0, e.g. 1,1.5,2 (got {text!r})")
    return strengths


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.toyworld.v2_sweep",
                                     description=__doc__.split("\n\n")[0])
    add_run_arguments(parser)
    parser.add_argument("--models", default="controlnet_fill", help="model folders in RUN, comma-separated")
    parser.add_argument("--strengths", type=strength_list, default="1,1.5,2",
                        help="ControlNet strengths, comma-separated")
    parser.add_argument("--seeds", type=int, default=4, help="sampling seeds per strength (default 4)")
    parser.add_argument("--window", choices=WINDOWS, default="all",
                        help="timesteps the strength applies to: all; high (t >= T/2) or low (t < T/2), 1 elsewhere")
    args = parser.parse_args(argv)
    if args.seeds < 1:
        parser.error("--seeds must be at least 1")
    if not 0 < args.cases < SEED_STRIDE:
        parser.error(f"--cases must lie in 1..{SEED_STRIDE - 1} (seed k samples case i with seed {SEED_STRIDE} k + i)")
    parts, cases = run_parts(args)
    record = args.out / ("sweep.json" if args.window == "all" else f"sweep_{args.window}.json")
    report = {"cases": args.cases, "seeds": args.seeds, "window": args.window, "models": {}}
    if record.is_file():  # a sweep of the same kind adds its rows to the file's
        found = json.loads(record.read_text(encoding="utf-8"))
        if all(found.get(key) == report[key] for key in ("cases", "seeds", "window")):
            report = found
        else:
            print(f"{record} holds a sweep of other cases or seeds; it is replaced", flush=True)
    for name in (n.strip() for n in args.models.split(",") if n.strip()):
        model = run_model(args, name)
        rows = report["models"].setdefault(name, {})
        for strength in args.strengths:
            per_seed = [scores({"clean": results_at(parts, model, cases, args.steps, strength, args.window,
                                                    SEED_STRIDE * seed)}, cases)["clean"]
                        for seed in range(args.seeds)]
            row = rows[f"{strength:g}"] = seed_spread(per_seed)
            print(f"{name} strength {strength:g}: " + ", ".join(
                f"{metric} {row['mean'][metric]:.3f} ± {row['sd'][metric]:.3f}" for metric in METRICS), flush=True)
    record.write_text(json.dumps(report, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""How well the toy base's VAE reconstructs a world, as it trains: the ceiling of every model on that base.

    python -m benchmarks.toyworld.vae_probe --world v2 --steps 6000 --out DIR [--norm_groups 4]

Trains the toy VAE (``base_model.toy_vae``, ``train_vae``: the base's own settings, ``--steps`` VAE steps on its
cosine schedule) and measures ``vae_reconstruction`` (the held-out truths through the VAE) with the v2 metrics
(``flats.measure_v2``: region error, pixel error, edge F1) every ``--every`` steps. Writes ``DIR/vae_probe.json``.
World v2 only: its metrics need the held-out cases' regions.
"""
from __future__ import annotations

import argparse
import json
import pathlib
import time
from dataclasses import asdict, replace

import numpy as np
import torch

from .base_model import BaseSettings, toy_vae, train_vae
from .evaluate import vae_reconstructions
from .flats import METRICS, measure_v2
from .v2 import held_out_v2


def reconstruction_metrics(vae, cases) -> dict:
    """The mean v2 metrics of the held-out truths through ``vae`` (in eval mode for the measure)."""
    was_training = vae.training
    vae.eval()
    with torch.no_grad():
        results = vae_reconstructions(vae, [case.with_strokes("") for case in cases])
    vae.train(was_training)
    scores = [measure_v2(result, case.truth, case.clean, case.clean) for result, case in zip(results, cases,
                                                                                                strict=True)]
    return {name: float(np.nanmean([score[name] for score in scores])) for name in METRICS if name != "leak"}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.toyworld.vae_probe", description=__doc__.split("\n")[0])
    parser.add_argument("--world", choices=("v2",), default="v2")
    parser.add_argument("--steps", type=int, default=6000, help="VAE training steps (the base's: 3000)")
    parser.add_argument("--every", type=int, default=1000, help="measure every this many steps")
    parser.add_argument("--norm_groups", type=int, default=BaseSettings.vae_norm_groups)
    parser.add_argument("--cases", type=int, default=32, help="held-out drawings measured")
    parser.add_argument("--out", type=pathlib.Path, required=True)
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    settings = replace(BaseSettings(), world=args.world, vae_steps=args.steps, vae_norm_groups=args.norm_groups)
    cases = held_out_v2(args.cases, settings.image_size)
    vae = toy_vae(settings.image_size, settings.vae_norm_groups)
    curve, started = [], time.perf_counter()

    def measure(step, model):
        if step % args.every == 0 or step == args.steps:
            curve.append({"step": step, "seconds": round(time.perf_counter() - started, 1),
                          **reconstruction_metrics(model, cases)})
            print(json.dumps(curve[-1]), flush=True)

    train_vae(vae, settings, on_step=measure)
    args.out.mkdir(parents=True, exist_ok=True)
    report = {"settings": asdict(settings), "cases": args.cases, "curve": curve}
    (args.out / "vae_probe.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

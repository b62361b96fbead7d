"""Proof that training works, end to end, without downloaded weights.

    python -m benchmarks.toyworld [--quick] [--world v2] --out DIR

1. pretrains a tiny latent diffusion base in the toy world (``base_model``) and saves it as a diffusers folder;
2. writes toy images as an image folder and trains our ControlNet on it with ``training/train.py`` (the real
   command line: procedural Canny + strokes hints, checkpoints, export to ``.safetensors``);
3. colours held-out drawings with the base alone, our exported checkpoint and flood fill (``evaluate``),
   and measures region colour error, stroke colour error (CIEDE2000) and edge F1; evaluates every
   checkpoint's export on a subset for the curve over training steps.

Writes ``DIR/results.json``, ``DIR/grid.png`` (drawing | strokes | base | ours | flood fill | truth) and
prints a table. ``--quick`` is a smoke run of a few minutes that checks only that everything runs. ``--world v2``
runs the harder world of ``world_v2`` instead, with a sparse and a fill-trained ControlNet (``v2``); v1 stays the
default.
"""
from __future__ import annotations

import argparse
import json
import logging
import pathlib
import platform
import sys
import time
from dataclasses import asdict, replace

import numpy as np
import torch
from PIL import Image

from .evaluate import (
    base_parts,
    evaluate_systems,
    held_out_cases,
    learned_results,
    load_exported,
    results_with_and_without_strokes,
    scores_and_effect,
    stroke_use,
)
from .metrics import palette_variety
from .stages import EXPORT_NAME, Settings, quick_settings, reuse_or_pretrain_base, train_controlnet, write_images
from .v2 import run_v2
from .v2 import table as table_v2
from .worlds import WORLDS


def curve(parts: dict, train_dir: pathlib.Path, cases, steps: int, final: list, final_bare: list) -> list[dict]:
    """``scores_and_effect`` of each checkpoint's exported model on ``cases``; ``final``/``final_bare`` hold the
    final model's results on them with and without strokes already (the last checkpoint's weights), so those
    are not generated again."""
    folders = sorted((train_dir / "checkpoints").glob("step-*"))
    points = []
    for index, folder in enumerate(folders):
        if index == len(folders) - 1:
            images, bare = final, final_bare
        else:
            controlnet = load_exported(folder / f"{EXPORT_NAME}.safetensors")
            images, bare = results_with_and_without_strokes(parts, controlnet, cases, 1.0, steps)
        points.append({"step": int(folder.name.split("-")[1]), **scores_and_effect(images, bare, cases)})
    return points


DEFAULT_STRENGTHS = (1.5, 2.0, 3.0)
DEFAULT_STROKE_GUIDANCE = (2.0, 3.0, 5.0)


def strength_sweep(parts: dict, controlnet, cases, steps: int, strengths) -> list[dict]:
    """``scores_and_effect`` of ``controlnet`` at each ControlNet strength in ``strengths`` (the conditioning
    scale a host's user sets: ComfyUI's strength, A1111's control weight)."""
    return [{"strength": strength,
             **scores_and_effect(*results_with_and_without_strokes(parts, controlnet, cases, strength, steps), cases)}
            for strength in strengths]


def stroke_guidance_sweep(parts: dict, controlnet, cases, steps: int, scales, bare: list) -> list[dict]:
    """``scores_and_effect`` of ``controlnet`` at strength 1 with stroke guidance at each scale in ``scales``
    (``learned_results``). Without strokes both sides of the guidance are the same, so the comparison for the
    stroke effect is ``bare``: the model's results on the drawings without strokes, unguided."""
    return [{"stroke_guidance": scale, **scores_and_effect(
        learned_results(parts, controlnet, cases, 1.0, steps, seed=0, stroke_guidance=scale), bare, cases)}
            for scale in scales]


def grid(cases, results: dict, rows: int = 6) -> Image.Image:
    """drawing | strokes (over white) | base | ours | flood fill | truth, one case per row."""
    tiles = []
    for index, case in enumerate(cases[:rows]):
        strokes_on_white = case.strokes[..., :3] * 255 + (1 - case.strokes[..., 3:]) * 255
        row = [case.truth.lineart, strokes_on_white.astype(np.uint8), results["base"][index], results["ours"][index],
               results["flood_fill"][index], case.truth.image]
        tiles.append(np.concatenate(row, axis=1))
    return Image.fromarray(np.concatenate(tiles, axis=0))


def table(systems: dict) -> str:
    lines = [f"{'system':<22}{'region error':>14}{'stroke error':>14}{'edge F1':>10}"]
    for name, scores in systems.items():
        lines.append(f"{name:<22}{scores['region_error']:>14.2f}{scores['stroke_error']:>14.2f}{scores['edge_f1']:>10.3f}")
    return "\n".join(lines)


def device_name() -> str:
    if torch.cuda.is_available():
        return f"cuda ({torch.cuda.get_device_name()})"
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def run(settings: Settings, out: pathlib.Path, evaluate_only: bool = False, strengths=DEFAULT_STRENGTHS,
        stroke_guidance=DEFAULT_STROKE_GUIDANCE) -> dict:
    """All three stages into ``out``; ``evaluate_only`` re-measures a finished run there (its base and
    ControlNet kept, its training time taken from the earlier results.json); the final model is also measured
    at each ControlNet strength in ``strengths`` and with each scale of stroke guidance in ``stroke_guidance``."""
    started = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    base_dir, train_dir = out / "base", out / "controlnet"
    if evaluate_only and not ((out / "results.json").is_file()
                              and (train_dir / f"{EXPORT_NAME}.safetensors").is_file()):
        raise SystemExit(f"--evaluate_only: {out} holds no finished run (results.json and "
                         f"controlnet/{EXPORT_NAME}.safetensors); run without --evaluate_only first")
    base_summary = reuse_or_pretrain_base(base_dir, settings.base)
    if evaluate_only:
        train_seconds = json.loads((out / "results.json").read_text(encoding="utf-8"))["controlnet_train_s"]
    else:
        data_dir = write_images(out / "images", settings.train_images, settings.base.image_size)
        train_seconds = train_controlnet(settings, base_dir, data_dir, train_dir)
    parts = base_parts(base_dir)
    cases = held_out_cases(settings.eval_cases, settings.base.image_size)
    final = load_exported(train_dir / f"{EXPORT_NAME}.safetensors")
    systems, results = evaluate_systems(parts, final, cases, settings.inference_steps)
    points = curve(parts, train_dir, cases[:settings.curve_cases], settings.inference_steps,
                   results["ours"][:settings.curve_cases], results["ours_without_strokes"][:settings.curve_cases])
    grid(cases, results).save(out / "grid.png")
    base_quality = {"vae_region_error": systems["vae_reconstruction"]["region_error"],
                    "sample_variety": palette_variety(results["base"]),
                    "truth_variety": palette_variety([case.truth.image for case in cases])}
    report = {
        "systems": systems, "curve": points, "settings": asdict(settings),
        "stroke_effect": systems["ours_without_strokes"]["region_error"] - systems["ours"]["region_error"],
        "strength_sweep": strength_sweep(parts, final, cases, settings.inference_steps, strengths),
        "stroke_guidance_sweep": stroke_guidance_sweep(parts, final, cases, settings.inference_steps, stroke_guidance,
                                                       results["ours_without_strokes"]),
        "stroke_use": stroke_use(parts, final, cases),
        "base": {**base_summary, **base_quality}, "controlnet_train_s": round(train_seconds, 1),
        "device": device_name(),
        "wall_s": round(time.perf_counter() - started, 1), "evaluate_only": evaluate_only,
    }
    (out / "results.json").write_text(json.dumps(report, indent=2, allow_nan=True), encoding="utf-8")
    return report


def floats(text: str | None, default: tuple) -> tuple:
    """A comma-separated option's numbers; ``default`` when it was not given."""
    return default if text is None else tuple(float(value) for value in text.split(",") if value.strip())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.toyworld", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, type=pathlib.Path, help="folder for the base, the run and the results")
    parser.add_argument("--quick", action="store_true", help="a smoke run of a few minutes (checks that all runs)")
    parser.add_argument("--world", choices=tuple(WORLDS), default="v1",
                        help="v1: flat palette colours (the curve and sweeps below); v2: shaded continuous "
                             "colours, open outlines, a person's strokes, sparse and fill-trained models "
                             "(benchmarks.toyworld.v2)")
    parser.add_argument("--middle_block_only", action="store_true", help="train the middle-block-only ControlNet")
    parser.add_argument("--evaluate_only", action="store_true",
                        help="measure the finished run in --out again (same settings) without training")
    parser.add_argument("--image_size", type=int, default=None, help="pixels of the world, base and training (128)")
    parser.add_argument("--steps", type=int, default=None, help="ControlNet training steps (default: Settings)")
    parser.add_argument("--vae_steps", type=int, default=None,
                        help="the base's VAE training steps (default 3000; v2's VAE needs 6000: vae_probe)")
    parser.add_argument("--strengths", default=None,
                        help="ControlNet strengths to measure the final model at besides 1, comma-separated "
                             "(default: 1.5,2,3; '' for none)")
    parser.add_argument("--stroke_guidance", default=None,
                        help="guidance scales to measure the final model at with stroke guidance (the negative "
                             "side without strokes), comma-separated (default: 2,3,5; '' for none)")
    parser.add_argument("--recipe", default=None,
                        help="trainer flags on top of its defaults, in one string (e.g. '--timestep_sampling=high')")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    settings = quick_settings() if args.quick else Settings()
    settings.middle_block_only = args.middle_block_only
    if args.image_size:
        settings.base = replace(settings.base, image_size=args.image_size)
    if args.vae_steps:
        settings.base = replace(settings.base, vae_steps=args.vae_steps)
    settings.controlnet_steps = args.steps or settings.controlnet_steps
    settings.recipe = args.recipe.split() if args.recipe else settings.recipe
    if args.world == "v2":
        settings.base = replace(settings.base, world="v2")
        report = run_v2(settings, args.out, args.evaluate_only)
        print(table_v2(report["systems"]))
        print(f"wrote {args.out / 'results.json'} and {args.out / 'grid.png'} in {report['wall_s']:.0f} s")
        return 0
    report = run(settings, args.out, args.evaluate_only, floats(args.strengths, DEFAULT_STRENGTHS),
                 floats(args.stroke_guidance, DEFAULT_STROKE_GUIDANCE))
    print(table(report["systems"]))
    print(f"stroke effect (region error without strokes - with): {report['stroke_effect']:.2f}; stroke use per tenth "
          f"of the timesteps: {' '.join(f'{v:.4f}' for v in report['stroke_use'])}")
    for point in report["curve"]:
        print(f"step {point['step']:>6}: region error {point['region_error']:.2f}, stroke effect "
              f"{point['stroke_effect']:.2f}, edge F1 {point['edge_f1']:.3f}")
    for point in report["strength_sweep"]:
        print(f"strength {point['strength']:>4}: region error {point['region_error']:.2f}, stroke effect "
              f"{point['stroke_effect']:.2f}, edge F1 {point['edge_f1']:.3f}")
    for point in report["stroke_guidance_sweep"]:
        print(f"stroke guidance {point['stroke_guidance']:>4}: region error {point['region_error']:.2f}, stroke "
              f"effect {point['stroke_effect']:.2f}, edge F1 {point['edge_f1']:.3f}")
    print(f"wrote {args.out / 'results.json'} and {args.out / 'grid.png'} in {report['wall_s']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

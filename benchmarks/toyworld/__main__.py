"""Proof that training works, end to end, without downloaded weights.

    python -m benchmarks.toyworld [--quick] --out DIR

1. pretrains a tiny latent diffusion base in the toy world (``base_model``) and saves it as a diffusers folder;
2. writes toy images as an image folder and trains our ControlNet on it with ``training/train.py`` (the real
   command line: procedural Canny + strokes hints, checkpoints, export to ``.safetensors``);
3. colours held-out drawings with the base alone, our exported checkpoint and flood fill (``evaluate``),
   and measures region colour error, stroke colour error (CIEDE2000) and edge F1; evaluates every
   checkpoint's export on a subset for the curve over training steps.

Writes ``DIR/results.json``, ``DIR/grid.png`` (drawing | strokes | base | ours | flood fill | truth) and
prints a table. ``--quick`` is a smoke run of a few minutes that checks only that everything runs.
"""
from __future__ import annotations

import argparse
import json
import logging
import pathlib
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from PIL import Image

from .base_model import BaseSettings, pretrain_base
from .evaluate import base_parts, evaluate_systems, held_out_cases, learned_results, load_exported, mean_metrics, measure
from .world import sample

REPO = pathlib.Path(__file__).resolve().parents[2]
EXPORT_NAME = "control_colorstroke_toy"
DATA_SEEDS = 4 * 10**6  # training images for the ControlNet: seeds DATA_SEEDS + i


@dataclass
class Settings:
    base: BaseSettings = field(default_factory=BaseSettings)
    train_images: int = 4000
    controlnet_steps: int = 2000
    controlnet_batch: int = 16
    learning_rate: float = 2e-4
    curve_points: int = 5
    curve_cases: int = 8
    eval_cases: int = 32
    inference_steps: int = 20
    middle_block_only: bool = False


def quick_settings() -> Settings:
    """Enough of everything to run each code path once, at 64 px."""
    base = BaseSettings(image_size=64, vae_steps=10, vae_batch=4, vae_crop=0, unet_images=16, unet_steps=10, unet_batch=4)
    return Settings(base=base, train_images=24, controlnet_steps=4, controlnet_batch=2, curve_points=2, curve_cases=2,
                    eval_cases=3, inference_steps=4)


def stroke_flags(image_size: int) -> list[str]:
    """The trainer's stroke generator scaled from its 512 px defaults to the toy size (walk length, blur), with
    4-32 strokes 3-5 px wide: the default 1-10 strokes of 1-3 px taught edges but no colour in 1500 steps."""
    scale = image_size / 512
    return [f"--strokes.length_min={max(1, int(200 * scale))}", f"--strokes.length_max={max(2, int(1000 * scale))}",
            "--strokes.count_min=4", "--strokes.count_max=32", "--strokes.count_pow2=true", "--strokes.thickness=1,2",
            f"--strokes.blur_sigma_min={max(0.25, scale)}", f"--strokes.blur_sigma_max={max(0.5, 3 * scale)}"]


def write_images(folder: pathlib.Path, count: int, size: int) -> pathlib.Path:
    """``count`` world images as PNGs with empty sidecar captions (an ordinary image-folder dataset)."""
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        name = folder / f"{index:06d}.png"
        if not name.exists():
            Image.fromarray(sample(DATA_SEEDS + index, size).image).save(name)
            name.with_suffix(".txt").write_text("", encoding="utf-8")
    return folder


def reuse_or_pretrain_base(base_dir: pathlib.Path, settings: BaseSettings) -> dict:
    """The base's summary: read back when ``base_dir`` holds a base pretrained with these settings (a rerun
    after a failed or changed ControlNet stage), else pretrained now and recorded in ``toyworld_base.json``."""
    record = base_dir / "toyworld_base.json"
    if record.is_file():
        saved = json.loads(record.read_text(encoding="utf-8"))
        if saved["settings"] == asdict(settings):
            logging.info("reusing the base in %s", base_dir)
            return saved["summary"]
    summary = pretrain_base(base_dir, settings)
    record.write_text(json.dumps({"settings": asdict(settings), "summary": summary}, indent=2), encoding="utf-8")
    return summary


def train_controlnet(settings: Settings, base_dir: pathlib.Path, data_dir: pathlib.Path, out: pathlib.Path) -> float:
    """Run ``training/train.py`` as a user would; returns its wall time in seconds."""
    every = max(1, settings.controlnet_steps // settings.curve_points)
    command = [
        sys.executable, str(REPO / "training" / "train.py"), "--base_model", str(base_dir), "--allow_non_sd15",
        "--data_source", "folder", "--data", str(data_dir), "--output_dir", str(out),
        "--resolution", str(settings.base.image_size), "--max_train_steps", str(settings.controlnet_steps),
        "--train_batch_size", str(settings.controlnet_batch), "--gradient_accumulation_steps", "1",
        "--learning_rate", str(settings.learning_rate),
        "--caption_dropout", "0", "--checkpointing_steps", str(every),
        "--checkpoints_total_limit", str(settings.curve_points + 1), "--validation_steps", "0",
        "--export_name", EXPORT_NAME, "--export_dtype", "fp32", "--mixed_precision", "no", "--report_to", "none", "--num_workers", "0",
        "--middle_block_only" if settings.middle_block_only else "--no-middle_block_only",
        *stroke_flags(settings.base.image_size),
    ]
    shutil.rmtree(out, ignore_errors=True)  # a fresh run, not a resume of an older one with other settings
    started = time.perf_counter()
    subprocess.run(command, check=True, cwd=REPO)
    return time.perf_counter() - started


def curve(parts: dict, train_dir: pathlib.Path, cases, steps: int, final: list) -> list[dict]:
    """Region/stroke error and edge F1 of each checkpoint's exported model on ``cases``; ``final`` holds the
    final model's results on them already (the last checkpoint's weights), so that one is not generated again."""
    folders = sorted((train_dir / "checkpoints").glob("step-*"))
    points = []
    for index, folder in enumerate(folders):
        images = final if index == len(folders) - 1 else learned_results(
            parts, load_exported(folder / f"{EXPORT_NAME}.safetensors"), cases, 1.0, steps, seed=0)
        points.append({"step": int(folder.name.split("-")[1]), **mean_metrics([measure(r, c) for r, c in zip(images, cases)])})
    return points


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


def run(settings: Settings, out: pathlib.Path, evaluate_only: bool = False) -> dict:
    """All three stages into ``out``; ``evaluate_only`` re-measures a finished run there (its base and
    ControlNet kept, its training time taken from the earlier results.json)."""
    started = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    base_dir, train_dir = out / "base", out / "controlnet"
    if evaluate_only and not ((out / "results.json").is_file() and (train_dir / f"{EXPORT_NAME}.safetensors").is_file()):
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
    systems, results = evaluate_systems(parts, train_dir / f"{EXPORT_NAME}.safetensors", cases,
                                        settings.inference_steps)
    points = curve(parts, train_dir, cases[:settings.curve_cases], settings.inference_steps,
                   results["ours"][:settings.curve_cases])
    grid(cases, results).save(out / "grid.png")
    report = {
        "systems": systems, "curve": points, "settings": asdict(settings),
        "base": base_summary, "controlnet_train_s": round(train_seconds, 1),
        "device": f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)",
        "wall_s": round(time.perf_counter() - started, 1), "evaluate_only": evaluate_only,
    }
    (out / "results.json").write_text(json.dumps(report, indent=2, allow_nan=True), encoding="utf-8")
    return report


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.toyworld", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, type=pathlib.Path, help="folder for the base, the run and the results")
    parser.add_argument("--quick", action="store_true", help="a smoke run of a few minutes (checks that all runs)")
    parser.add_argument("--middle_block_only", action="store_true", help="train the middle-block-only ControlNet")
    parser.add_argument("--evaluate_only", action="store_true",
                        help="measure the finished run in --out again (same settings) without training")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    settings = quick_settings() if args.quick else Settings()
    settings.middle_block_only = args.middle_block_only
    report = run(settings, args.out, args.evaluate_only)
    print(table(report["systems"]))
    for point in report["curve"]:
        print(f"step {point['step']:>6}: region error {point['region_error']:.2f}")
    print(f"wrote {args.out / 'results.json'} and {args.out / 'grid.png'} in {report['wall_s']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

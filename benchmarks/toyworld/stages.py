"""The toy world's stages shared by the full run (``__main__``) and the ablation (``ablation``): the run's
settings, the training images, the pretrained base (reused when its settings match) and the ControlNet
training through ``training/train.py`` as a user runs it."""
from __future__ import annotations

import json
import logging
import pathlib
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field

from PIL import Image

from .base_model import BaseSettings, pretrain_base
from .worlds import sampler

REPO = pathlib.Path(__file__).resolve().parents[2]
EXPORT_NAME = "control_colorstroke_toy"
DATA_SEEDS = 4 * 10**6  # training images for the ControlNet: seeds DATA_SEEDS + i


@dataclass
class Settings:
    base: BaseSettings = field(default_factory=BaseSettings)
    train_images: int = 4000
    controlnet_steps: int = 9360
    controlnet_batch: int = 16
    learning_rate: float = 2e-4
    curve_points: int = 5
    curve_cases: int = 8
    eval_cases: int = 32
    inference_steps: int = 20
    middle_block_only: bool = False
    recipe: list = field(default_factory=list)  # trainer flags of the recipe on top of its defaults


def quick_settings() -> Settings:
    """Enough of everything to run each code path once, at 64 px."""
    base = BaseSettings(image_size=64, vae_steps=10, vae_batch=4, vae_crop=0, unet_images=16, unet_steps=10,
                        unet_batch=4)
    return Settings(base=base, train_images=24, controlnet_steps=4, controlnet_batch=2, curve_points=2, curve_cases=2,
                    eval_cases=3, inference_steps=4)


def stroke_flags(image_size: int) -> list[str]:
    """The trainer's stroke generator scaled from its 512 px defaults to the toy size (walk length, blur), with
    4-32 strokes 3-5 px wide: the default 1-10 strokes of 1-3 px taught edges but no colour in 1500 steps."""
    scale = image_size / 512
    return [f"--strokes.length_min={max(1, int(200 * scale))}", f"--strokes.length_max={max(2, int(1000 * scale))}",
            "--strokes.count_min=4", "--strokes.count_max=32", "--strokes.count_pow2=true", "--strokes.thickness=1,2",
            f"--strokes.blur_sigma_min={max(0.25, scale)}", f"--strokes.blur_sigma_max={max(0.5, 3 * scale)}"]


def write_images(folder: pathlib.Path, count: int, size: int, world: str = "v1") -> pathlib.Path:
    """``count`` images of ``world`` as PNGs with empty sidecar captions (an ordinary image-folder dataset)."""
    folder.mkdir(parents=True, exist_ok=True)
    draw = sampler(world)
    for index in range(count):
        name = folder / f"{index:06d}.png"
        if not name.exists():
            Image.fromarray(draw(DATA_SEEDS + index, size).image).save(name)
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
    """Run ``training/train.py`` as a user would (the toy's strokes and ``settings.recipe`` on top of the
    trainer's defaults), into a fresh ``out``; returns its wall time in seconds."""
    every = max(1, settings.controlnet_steps // settings.curve_points)
    command = [
        sys.executable, str(REPO / "training" / "train.py"), "--base_model", str(base_dir), "--allow_non_sd15",
        "--data_source", "folder", "--data", str(data_dir), "--output_dir", str(out),
        "--resolution", str(settings.base.image_size), "--max_train_steps", str(settings.controlnet_steps),
        "--train_batch_size", str(settings.controlnet_batch), "--gradient_accumulation_steps", "1",
        "--learning_rate", str(settings.learning_rate),
        "--caption_dropout", "0", "--checkpointing_steps", str(every),
        "--checkpoints_total_limit", str(settings.curve_points + 1), "--validation_steps", "0",
        "--export_name", EXPORT_NAME, "--export_dtype", "fp32", "--mixed_precision", "no", "--report_to", "none",
        "--num_workers", "0",
        "--middle_block_only" if settings.middle_block_only else "--no-middle_block_only",
        *stroke_flags(settings.base.image_size), *settings.recipe,
    ]
    shutil.rmtree(out, ignore_errors=True)  # a fresh run, not a resume of an older one with other settings
    started = time.perf_counter()
    subprocess.run(command, check=True, cwd=REPO)
    return time.perf_counter() - started

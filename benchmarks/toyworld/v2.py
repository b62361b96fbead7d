"""Toy world v2 end to end: a base pretrained on v2 pictures, two ControlNets trained on them with
``training/train.py`` (``ours``: today's recipe with sparse strokes only; ``ours_fill``: the same with strokes
filled between the lines of each image's own edges), every system measured on held-out v2 drawings with a person's
strokes (``world_v2.user_strokes_v2``: clean, and sloppy ones that cross the lines).

Systems (each also on the sloppy strokes, as ``NAME_sloppy``):
- ``base``: the base alone (ControlNet strength 0); ``vae_reconstruction``: the truth through the base's VAE;
- ``ours``: the sparse model with the sparse strokes; ``ours_without_strokes``: the same, no strokes;
- ``ours_fill``: the fill model with the flats (``fill_strokes`` at ``FILL_GAP``, as every host fills them);
  ``ours_fill_without_strokes``: the same, no strokes;
- ``ours_fill_at_inference_only``: the sparse model given the flats;
- ``fill_only``: the flats on the drawing, no model; ``flood_fill``: a plain flood fill of the strokes.

Metrics (``flats.measure_v2``): region_error, pixel_error, edge_f1, leak (docs/benchmarks.md). Writes
``results.json`` (``systems`` -> name -> metrics) and ``grid.png``.
"""
from __future__ import annotations

import argparse
import json
import pathlib
import time
from dataclasses import asdict, dataclass, replace

import numpy as np
from PIL import Image

from preprocessors import fill_strokes

from .evaluate import HELD_OUT_SEED, Case, base_parts, learned_results, load_exported, vae_reconstructions
from .flats import METRICS, flats_on_drawing, measure_v2
from .flood_fill import flood_fill
from .stages import EXPORT_NAME, Settings, reuse_or_pretrain_base, train_controlnet, write_images
from .world_v2 import sample_v2, user_strokes_v2

FILL_GAP = 4  # pixels at 128 px: v2 draws gaps of 1-3 px there (benchmarks/results/toyworld_v2/flats.json used 4)
SPARSE_RECIPE = ["--fill_probability=0"]  # ``ours``: the recipe before the fill
FILL_RECIPE = [f"--fill_gap={FILL_GAP}"]  # ``ours_fill``: the trainer's default fill probability at this gap
STROKE_SETS = ("", "_sloppy")


@dataclass
class CaseV2:
    """A held-out v2 drawing with a person's clean and sloppy strokes (HxWx4 float32 premultiplied each)."""

    truth: object
    clean: np.ndarray
    sloppy: np.ndarray

    def with_strokes(self, suffix: str) -> Case:
        """The evaluation ``Case`` of the clean (``""``) or sloppy (``"_sloppy"``) strokes."""
        return Case(self.truth, self.sloppy if suffix else self.clean)


def held_out_v2(count: int, size: int) -> list[CaseV2]:
    """``count`` deterministic held-out v2 cases (the seeds of ``benchmarks.toyworld.flats``)."""
    cases = []
    for index in range(count):
        truth = sample_v2(HELD_OUT_SEED + index, size)
        cases.append(CaseV2(truth, *user_strokes_v2(truth, np.random.default_rng(HELD_OUT_SEED + index))))
    return cases


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of every tool that measures the models of a finished v2 run: --out, --cases, --steps."""
    parser.add_argument("--out", required=True, type=pathlib.Path, help="a finished v2 run folder")
    parser.add_argument("--cases", type=int, default=32, help="held-out drawings (default 32, as the run)")
    parser.add_argument("--steps", type=int, default=20, help="sampling steps (default 20, as the run)")


def run_parts(args: argparse.Namespace) -> tuple[dict, list[CaseV2]]:
    """The base's parts (``base_parts``) of the run in ``args.out`` and its ``args.cases`` held-out cases."""
    parts = base_parts(args.out / "base")
    return parts, held_out_v2(args.cases, parts["unet"].config.sample_size * 8)


def run_export(args: argparse.Namespace, folder) -> pathlib.Path:
    """The exported file of the model ``folder`` (a path in the run, e.g. ``controlnet_fill`` or one of its
    checkpoints) of the run in ``args.out``."""
    return args.out / folder / f"{EXPORT_NAME}.safetensors"


def run_model(args: argparse.Namespace, folder):
    """The ControlNet of ``run_export(args, folder)``."""
    return load_exported(run_export(args, folder))


def filled_results(parts: dict, controlnet, cases: list[CaseV2], suffix: str, steps: int, strength: float = 1.0,
                   stroke_guidance: float = 1.0, seed: int = 0) -> list:
    """``controlnet``'s results (HxWx3 uint8, one per case) with the strokes of ``suffix`` filled between the lines
    as every host fills them (gap ``FILL_GAP``); strength, stroke_guidance, seed as ``learned_results`` takes them."""
    return learned_results(parts, controlnet, [case.with_strokes(suffix) for case in cases], strength, steps, seed,
                           stroke_guidance=stroke_guidance, fill=True, fill_gap=FILL_GAP)


def fill_model_results(parts: dict, filled, cases: list[CaseV2], suffix: str, steps: int) -> dict:
    """A fill-trained model's results on ``cases``: ``ours_fill`` with the strokes of ``suffix`` filled as every host
    fills them, and (for the clean set) ``ours_fill_without_strokes``."""
    results = {"ours_fill": filled_results(parts, filled, cases, suffix, steps)}
    if not suffix:
        none = [Case(case.truth, np.zeros_like(case.clean)) for case in cases]
        results["ours_fill_without_strokes"] = learned_results(parts, filled, none, 1.0, steps, 0)
    return results


def model_results(parts: dict, sparse, filled, cases: list[CaseV2], suffix: str, steps: int) -> dict:
    """The learned systems' results on ``cases`` with the strokes of ``suffix``."""
    strokes = [case.with_strokes(suffix) for case in cases]
    none = [Case(case.truth, np.zeros_like(case.clean)) for case in cases]
    results = {
        "ours": learned_results(parts, sparse, strokes, 1.0, steps, 0, fill=False),
        **fill_model_results(parts, filled, cases, suffix, steps),
        "ours_fill_at_inference_only": filled_results(parts, sparse, cases, suffix, steps),
    }
    if not suffix:  # without strokes nothing differs between the stroke sets: generated once, measured for each
        results["base"] = learned_results(parts, sparse, strokes, 0.0, steps, 0)
        results["ours_without_strokes"] = learned_results(parts, sparse, none, 1.0, steps, 0)
    return results


def fill_only(case: CaseV2, strokes: np.ndarray, paper: np.ndarray | None = None) -> np.ndarray:
    """HxWx3 uint8: ``strokes`` (HxWx4 premultiplied) filled between the lines of ``case``'s drawing at ``FILL_GAP``,
    as every host fills them, shown on the drawing (or on ``paper``, an HxWx3 uint8 background)."""
    layer = fill_strokes(case.truth.lineart, strokes, gap=FILL_GAP)
    return flats_on_drawing(case.truth.lineart if paper is None else paper, layer)


def model_free_results(cases: list[CaseV2], suffix: str) -> dict:
    """fill_only and flood_fill on ``cases`` with the strokes of ``suffix``."""
    strokes = [case.with_strokes(suffix).strokes for case in cases]
    return {"fill_only": [fill_only(case, layer) for case, layer in zip(cases, strokes, strict=True)],
            "flood_fill": [flood_fill(case.truth.lineart, layer) for case, layer in zip(cases, strokes, strict=True)]}


def all_results(parts: dict, sparse, filled, cases: list[CaseV2], steps: int) -> dict:
    """{system name (``_sloppy`` for the sloppy strokes): HxWx3 uint8 results, one per case}."""
    results = {}
    for suffix in STROKE_SETS:
        found = {**model_results(parts, sparse, filled, cases, suffix, steps), **model_free_results(cases, suffix)}
        results.update({name + suffix: images for name, images in found.items()})
    for name in ("base", "ours_without_strokes", "ours_fill_without_strokes"):
        results[name + "_sloppy"] = results[name]
    results["vae_reconstruction"] = vae_reconstructions(parts["vae"], [case.with_strokes("") for case in cases])
    return results


def scores(results: dict, cases: list[CaseV2]) -> dict:
    """{system: mean metrics}: each result against its truth; the areas meant are the clean strokes', the strokes
    for leak are the ones given (clean or sloppy)."""
    systems = {}
    for name, images in results.items():
        rows = [measure_v2(image, case.truth, case.sloppy if name.endswith("_sloppy") else case.clean, case.clean)
                for image, case in zip(images, cases, strict=True)]
        systems[name] = {metric: float(np.nanmean([row[metric] for row in rows])) for metric in METRICS}
    return systems


GRID_COLUMNS = ("flats", "base", "ours", "ours_fill", "ours_fill_at_inference_only", "fill_only", "flood_fill")


def grid(cases: list[CaseV2], results: dict, rows: int = 6) -> Image.Image:
    """drawing | strokes | flats (over white) | base | ours | ours_fill | ours_fill_at_inference_only | fill_only |
    flood_fill | truth, one clean-stroke case per row, then the same for the sloppy strokes of the first two."""
    tiles = []
    for suffix, count in (("", rows), ("_sloppy", 2)):
        for index, case in enumerate(cases[:count]):
            strokes = case.with_strokes(suffix).strokes
            paper = np.full_like(case.truth.lineart, 255)
            row = [case.truth.lineart, flats_on_drawing(paper, strokes),
                   fill_only(case, strokes, paper),
                   *(results[name + suffix][index] for name in GRID_COLUMNS[1:]), case.truth.image]
            tiles.append(np.concatenate(row, axis=1))
    return Image.fromarray(np.concatenate(tiles, axis=0))


def run_v2(settings: Settings, out: pathlib.Path, evaluate_only: bool = False) -> dict:
    """The three stages of world v2 into ``out`` (``base``, ``controlnet``, ``controlnet_fill``); ``evaluate_only``
    measures a finished run there again."""
    started = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    base_dir = out / "base"
    runs = {"ours": (out / "controlnet", SPARSE_RECIPE), "ours_fill": (out / "controlnet_fill", FILL_RECIPE)}
    exports = {name: folder / f"{EXPORT_NAME}.safetensors" for name, (folder, _) in runs.items()}
    if evaluate_only and not ((out / "results.json").is_file() and all(p.is_file() for p in exports.values())):
        raise SystemExit(f"--evaluate_only: {out} holds no finished v2 run (results.json and both exported "
                         "models); run without --evaluate_only first")
    base_summary = reuse_or_pretrain_base(base_dir, settings.base)
    if evaluate_only:
        seconds = json.loads((out / "results.json").read_text(encoding="utf-8"))["controlnet_train_s"]
    else:
        data_dir = write_images(out / "images", settings.train_images, settings.base.image_size, settings.base.world)
        seconds = {name: round(train_controlnet(replace(settings, recipe=[*settings.recipe, *flags]), base_dir,
                                                data_dir, folder), 1)
                   for name, (folder, flags) in runs.items()}
    parts = base_parts(base_dir)
    cases = held_out_v2(settings.eval_cases, settings.base.image_size)
    results = all_results(parts, load_exported(exports["ours"]), load_exported(exports["ours_fill"]), cases,
                          settings.inference_steps)
    systems = scores(results, cases)
    grid(cases, results).save(out / "grid.png")
    report = {"world": "v2", "systems": systems, "settings": asdict(settings), "fill_gap": FILL_GAP,
              "recipes": {name: flags for name, (_, flags) in runs.items()},
              "stroke_effect": {name: systems[f"{name}_without_strokes"]["region_error"] - systems[name]["region_error"]
                                for name in ("ours", "ours_fill")},
              "base": base_summary, "controlnet_train_s": seconds,
              "wall_s": round(time.perf_counter() - started, 1), "evaluate_only": evaluate_only}
    (out / "results.json").write_text(json.dumps(report, indent=2, allow_nan=True), encoding="utf-8")
    return report


def table(systems: dict) -> str:
    lines = [f"{'system':<36}" + "".join(f"{metric:>14}" for metric in METRICS)]
    lines += [f"{name:<36}" + "".join(f"{values[metric]:>14.3f}" for metric in METRICS)
              for name, values in systems.items()]
    return "\n".join(lines)

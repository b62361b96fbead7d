"""Speed of hint building, against the naive stroke generator, in one process on one core.

    python -m benchmarks.bench_hints [--size 512] [--samples 200]    (from the repo root)

Prints ms per sample for our strokes and for the naive reference (same algorithm, same seeds), their
ratio, ms per full training hint (Canny + strokes + stacking), ms per call of a host's per-image steps
``user_strokes`` (RGB + mask) and ``hint_preview`` at 1024x1024, ms per ``fill_strokes`` at 1024x1024 on the bundled
example drawing and on Canny edges of a photograph (many small areas) against ``cv2.connectedComponents`` of the
same lines (the ratio is the figure: both timed in this process), how well ``canny_batch`` (torch)
agrees with ``canny`` (OpenCV) as edge F1 pixel for pixel on scikit-image's pictures, and whether Canny of a
grey channel could stand in for the RGB Canny of the training hint (its ms and F1 against it).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import numpy as np
import skimage.data
import torch

from benchmarks.naive_strokes import naive_random_strokes
from preprocessors import (
    EdgeParams,
    StrokeParams,
    canny,
    canny_batch,
    fill_strokes,
    hint_preview,
    inference_hint,
    load_image,
    random_strokes,
    resize_strokes,
    training_hint,
    user_strokes,
)
from preprocessors.fill import line_mask
from training.metrics import edge_f1

HOST_SIDE = 1024  # a host node's typical image side
EXAMPLE = Path(__file__).resolve().parents[1] / "example_workflows"


def per_sample_ms(make, samples: int) -> float:
    make(np.random.default_rng(10**6))  # warm-up
    start = time.perf_counter()
    for seed in range(samples):
        make(np.random.default_rng(seed))
    return (time.perf_counter() - start) / samples * 1000.0


def host_steps_ms(samples: int) -> tuple[float, float]:
    """ms per call of ``user_strokes`` (RGB image + HxW mask) and ``hint_preview`` at HOST_SIDE square."""
    image = cv2.resize(skimage.data.astronaut(), (HOST_SIDE, HOST_SIDE), interpolation=cv2.INTER_LINEAR)
    mask = random_strokes(image, np.random.default_rng(0))[..., 3]
    hint = inference_hint(image, image, mask)
    strokes = per_sample_ms(lambda rng: user_strokes(image, mask), samples)
    preview = per_sample_ms(lambda rng: hint_preview(hint), samples)
    return strokes, preview


def fill_ms(samples: int) -> list[tuple[str, float, float]]:
    """(picture, ms per ``fill_strokes``, ms per ``cv2.connectedComponents`` of its line-free pixels) at HOST_SIDE
    square: the example drawing with its strokes, and Canny edges of the astronaut with procedural strokes."""
    side = (HOST_SIDE, HOST_SIDE)
    drawing = cv2.resize(load_image(EXAMPLE / "lineart.png"), side, interpolation=cv2.INTER_LINEAR)
    strokes = resize_strokes(user_strokes(load_image(EXAMPLE / "strokes.png")), side)
    photo = cv2.resize(skimage.data.astronaut(), side, interpolation=cv2.INTER_LINEAR)
    cases = {"example drawing": (drawing, strokes),
             "astronaut edges": (canny(photo), random_strokes(photo, np.random.default_rng(0), colour="mean"))}
    rows = []
    for name, (lines, layer) in cases.items():
        free = (~line_mask(lines)).view(np.uint8)
        rows.append((name, per_sample_ms(lambda rng, lines=lines, layer=layer: fill_strokes(lines, layer), samples),
                     per_sample_ms(lambda rng, free=free: cv2.connectedComponents(free, connectivity=4), samples)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=512, help="image side in pixels")
    parser.add_argument("--samples", type=int, default=200, help="samples timed per generator")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    image = cv2.resize(skimage.data.astronaut(), (args.size, args.size), interpolation=cv2.INTER_AREA)
    params = StrokeParams()

    ours = per_sample_ms(lambda rng: random_strokes(image, rng, params), args.samples)
    naive = per_sample_ms(lambda rng: naive_random_strokes(image, rng, params), max(args.samples // 20, 5))
    hint = per_sample_ms(lambda rng: training_hint(image, rng, params, EdgeParams()), args.samples)
    print(f"{args.size}x{args.size}, 1 core, default StrokeParams (1-10 strokes, blur p=0.5)")
    print(f"strokes  naive reference {naive:8.2f} ms/sample")
    print(f"strokes  ours            {ours:8.2f} ms/sample   speed-up x{naive / ours:.1f}")
    print(f"hint     ours (Canny + strokes + stack) {hint:8.2f} ms/sample")
    strokes, preview = host_steps_ms(max(args.samples // 10, 5))
    print(f"host     {HOST_SIDE}x{HOST_SIDE} user_strokes (RGB + mask) {strokes:6.2f} ms, "
          f"hint_preview {preview:6.2f} ms")
    for name, fill, components in fill_ms(max(args.samples // 10, 5)):
        print(f"fill     {HOST_SIDE}x{HOST_SIDE} {name:16s} fill_strokes {fill:6.2f} ms, connectedComponents "
              f"{components:5.2f} ms: x{fill / components:.1f}")

    pictures = {"astronaut": skimage.data.astronaut(), "chelsea": skimage.data.chelsea(),
                "coffee": skimage.data.coffee(), "rocket": skimage.data.rocket(), "camera": skimage.data.camera()}
    scores = []
    for name, picture in pictures.items():
        batch = torch.from_numpy(picture if picture.ndim == 3
                                 else np.stack([picture] * 3, -1)).permute(2, 0, 1)[None] / 255.0
        score = edge_f1(canny_batch(batch)[0, 0].numpy(), canny(picture), tolerance=0)
        scores.append(score)
        print(f"canny_batch vs canny  {name:10s} F1 {score:.4f}")
    print(f"canny_batch vs canny  mean F1 {np.mean(scores):.4f}")
    grey_canny_agreement({name: picture for name, picture in pictures.items() if picture.ndim == 3}, args.size,
                         args.samples)


def grey_canny_agreement(pictures: dict, size: int, samples: int) -> None:
    """Would Canny of one grey channel do for the training hint's RGB Canny? Its ms and edge F1 (pixel for pixel)
    against ``canny`` of the RGB picture at the trainer's default thresholds, for two greys: luma and the
    brightest channel. An equal would need F1 >= 0.97."""
    greys = {"luma": lambda rgb: cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY),
             "max channel": lambda rgb: cv2.max(cv2.max(rgb[..., 0], rgb[..., 1]), rgb[..., 2])}
    resized = [cv2.resize(picture, (size, size), interpolation=cv2.INTER_AREA) for picture in pictures.values()]
    rgb_ms = np.mean([per_sample_ms(lambda rng, p=p: canny(p), max(samples // 4, 1)) for p in resized])
    print(f"canny of RGB {size}x{size}: {rgb_ms:.2f} ms")
    for name, grey in greys.items():
        scores = [edge_f1(canny(grey(p)), canny(p), tolerance=0) for p in resized]
        ms = np.mean([per_sample_ms(lambda rng, p=p, g=grey: canny(g(p)), max(samples // 4, 1)) for p in resized])
        print(f"canny of {name:11s}: {ms:.2f} ms, F1 against RGB mean {np.mean(scores):.3f} min {np.min(scores):.3f}")


if __name__ == "__main__":
    main()

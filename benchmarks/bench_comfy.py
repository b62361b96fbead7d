"""Speed of the ComfyUI nodes, on one core.

    python -m benchmarks.bench_comfy [--size 1024] [--latent 32] [--steps 20] [--tiny]    (from the repo root)

1. Color Stroke + Canny on a size x size drawing with a LoadImage-style stroke IMAGE + MASK
   (target <= 30 ms), with the time of each part (``preprocessors`` calls vs the node's own work).
2. When COMFYUI_DIR names a ComfyUI checkout (run with a Python that has its requirements): the
   per-step cost of the control our apply node attaches vs the stock ControlNetApplyAdvanced's, with
   the same ComfyUI ControlNet (an SD 1.5-sized random one, or a small one with --tiny) and the same
   hint: ``get_control`` per sampling step on a (cond, uncond) batch, interleaved, median of the
   steps (target ratio <= 1.02). The UNet's own cost is the same for both and not included, so the
   ratio is an upper bound on the slowdown of a sampling step. The apply call itself (once per
   prompt) is timed too.
"""
from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import pathlib
import statistics
import sys
import tempfile
import time

import cv2
import numpy as np
import torch

ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGE = "color_stroke_bench"


def median_ms(call, repeats: int) -> float:
    call()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000.0


def example_batch(size: int):
    """The bundled drawing and stroke layer at size x size as ComfyUI tensors: IMAGE, IMAGE, MASK (1 - alpha)."""
    pp = importlib.import_module(f"{PACKAGE}.preprocessors")
    drawing = cv2.resize(pp.load_image(ROOT / "example_workflows" / "lineart.png"), (size, size),
                         interpolation=cv2.INTER_AREA)
    layer = cv2.resize(pp.load_image(ROOT / "example_workflows" / "strokes.png"), (size, size),
                       interpolation=cv2.INTER_AREA)
    image = torch.from_numpy(drawing.astype(np.float32) / 255.0)[None]
    rgba = torch.from_numpy(layer.astype(np.float32) / 255.0)[None]
    return image, rgba[..., :3].contiguous(), (1.0 - rgba[..., 3]).contiguous()


def bench_preprocessor(package, size: int, repeats: int):
    pp = importlib.import_module(f"{PACKAGE}.preprocessors")
    hb = importlib.import_module(f"{PACKAGE}.nodes.hint_tensors")
    node = package.NODE_CLASS_MAPPINGS["ColorStrokeCanny"]()
    drawing, strokes, mask = example_batch(size)
    drawing_u8, layer, alpha = hb.to_uint8(drawing)[0], strokes[0].numpy(), (1.0 - mask[0]).numpy()

    def direct():
        return pp.hint_preview(pp.inference_hint(drawing_u8, layer, alpha))

    total = median_ms(lambda: node.build(drawing, "canny", *pp.DEFAULT_CANNY, "no_stroke", "#FFFFFF", strokes=strokes,
                                         strokes_mask=mask), repeats)
    preprocessors = median_ms(direct, repeats)
    edges = pp.canny(drawing_u8, *pp.DEFAULT_CANNY)
    stroke_layer = pp.user_strokes(layer, alpha)
    hint = pp.make_hint(edges, stroke_layer)
    parts = {
        "canny": median_ms(lambda: pp.canny(drawing_u8, *pp.DEFAULT_CANNY), repeats),
        "user_strokes": median_ms(lambda: pp.user_strokes(layer, alpha), repeats),
        "make_hint": median_ms(lambda: pp.make_hint(edges, stroke_layer), repeats),
        "hint_preview": median_ms(lambda: pp.hint_preview(hint), repeats),
    }
    print(f"Color Stroke + Canny node, {size}x{size}, strokes IMAGE + MASK: {total:.1f} ms (target <= 30 ms)")
    print(f"  of which preprocessors.inference_hint + hint_preview on the same arrays: {preprocessors:.1f} ms "
          f"(node glue: {total - preprocessors:.1f} ms)")
    print("  preprocessors parts alone: " + ", ".join(f"{name} {ms:.1f} ms" for name, ms in parts.items()))


def sd15_controlnet(model, tiny: bool):
    """A random diffusers ControlNet with non-zero output convs: SD 1.5-sized, or small with ``tiny``."""
    from diffusers import ControlNetModel, UNet2DConditionModel

    torch.manual_seed(0)
    if tiny:
        controlnet = ControlNetModel(block_out_channels=(64, 128),
                                     down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                                     layers_per_block=1, cross_attention_dim=768, attention_head_dim=(1, 2),
                                     conditioning_channels=5)
    else:
        controlnet = model.build_controlnet(UNet2DConditionModel(block_out_channels=(320, 640, 1280, 1280),
                                                                 cross_attention_dim=768))
    with torch.no_grad():
        for conv in [*controlnet.controlnet_down_blocks, controlnet.controlnet_mid_block]:
            conv.reset_parameters()
    return controlnet


def bench_apply(package, comfy_dir: str, latent: int, steps: int, tiny: bool):
    sys.path.insert(0, comfy_dir)
    from comfy.cli_args import args

    args.cpu = True
    import comfy.controlnet
    import comfy.model_base
    import nodes as comfy_nodes

    model = importlib.import_module(f"{PACKAGE}.model")
    with tempfile.TemporaryDirectory() as folder:
        path = pathlib.Path(folder) / "cs.safetensors"
        model.save_checkpoint(sd15_controlnet(model, tiny), path, layout="ldm" if tiny else "diffusers")
        control_net = importlib.import_module(f"{PACKAGE}.nodes.comfy_host").load_color_stroke(
            str(path), "white_on_black")

    drawing, strokes, mask = example_batch(latent * 8)
    node = package.NODE_CLASS_MAPPINGS["ColorStrokeCanny"]()
    canny = importlib.import_module(f"{PACKAGE}.preprocessors").DEFAULT_CANNY
    hint, _ = node.build(drawing, "canny", *canny, "no_stroke", "#FFFFFF", strokes=strokes, strokes_mask=mask)
    generator = torch.Generator().manual_seed(1)
    positive = [[torch.randn(1, 77, 768, generator=generator), {}]]
    negative = [[torch.randn(1, 77, 768, generator=generator), {}]]
    ours_node, stock_node = (package.NODE_CLASS_MAPPINGS["ApplyColorStrokeControlNet"](),
                             comfy_nodes.ControlNetApplyAdvanced())
    image = hint.movedim(1, -1)

    def ours():
        return ours_node.apply(positive, negative, control_net, hint, 1.0, 0.0, 1.0)

    def stock():
        return stock_node.apply_controlnet(positive, negative, control_net, image, 1.0, 0.0, 1.0)

    apply_ms = {"ours": median_ms(ours, 20), "stock": median_ms(stock, 20)}
    controls = {"ours": ours()[0][0][1]["control"], "stock": stock()[0][0][1]["control"]}
    sampling = comfy.model_base.model_sampling(None, comfy.model_base.ModelType.EPS)
    fake_model = type("Model", (), {"model_sampling": sampling})()
    x = torch.randn(2, 4, latent, latent, generator=generator)
    cond = {"c_crossattn": torch.cat([positive[0][0], negative[0][0]])}
    sigmas = torch.linspace(10.0, 0.5, steps)
    times = {"ours": [], "stock": []}
    for control in controls.values():
        control.pre_run(fake_model, sampling.percent_to_sigma)
    with torch.no_grad():
        for _name, control in controls.items():  # warm-up: the hint is scaled to the latent on the first step
            control.get_control(x, sigmas[:1].expand(2), cond, 2, {})
        for index, sigma in enumerate(sigmas):
            for name in ("ours", "stock") if index % 2 else ("stock", "ours"):
                start = time.perf_counter()
                controls[name].get_control(x, sigma.expand(2), cond, 2, {})
                times[name].append(time.perf_counter() - start)
    for control in controls.values():
        control.cleanup()
    step = {name: statistics.median(values) * 1000.0 for name, values in times.items()}
    ratio = statistics.median(a / b for a, b in zip(times["ours"], times["stock"], strict=True))
    kind = "small" if tiny else "SD 1.5-sized"
    print(f"Apply path, {kind} ControlNet, latent {latent}x{latent}, cond+uncond batch, {steps} steps:")
    print(f"  get_control per step (median): ours {step['ours']:.1f} ms, stock {step['stock']:.1f} ms; "
          f"median of the per-step ratios ours/stock {ratio:.3f} (target <= 1.02)")
    print(f"  apply node call (once per prompt): ours {apply_ms['ours']:.2f} ms, stock {apply_ms['stock']:.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=1024, help="drawing side in pixels for the preprocessor")
    parser.add_argument("--repeats", type=int, default=20, help="timed calls of the preprocessor")
    parser.add_argument("--latent", type=int, default=32, help="latent side for the apply path (pixels / 8)")
    parser.add_argument("--steps", type=int, default=20, help="sampling steps timed per path")
    parser.add_argument("--tiny", action="store_true", help="a small ControlNet instead of an SD 1.5-sized one")
    options = parser.parse_args()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    spec = importlib.util.spec_from_file_location(PACKAGE, ROOT / "__init__.py", submodule_search_locations=[str(ROOT)])
    package = importlib.util.module_from_spec(spec)
    sys.modules[PACKAGE] = package
    spec.loader.exec_module(package)

    bench_preprocessor(package, options.size, options.repeats)
    comfy_dir = os.environ.get("COMFYUI_DIR")
    if comfy_dir:
        bench_apply(package, comfy_dir, options.latent, options.steps, options.tiny)
    else:
        print("Apply path: skipped (set COMFYUI_DIR to a ComfyUI checkout and use a Python with its requirements)")


if __name__ == "__main__":
    main()

"""ComfyUI with SDXL: (1) in Chromium, a Color Stroke ControlNet of the wrong family: the SDXL example workflow
queued from the page with an SD 1.5 checkpoint picked in Load Checkpoint. Expected: the run stops at the KSampler and
ComfyUI's error dialog names both families and what to pick (not a shape-mismatch traceback, not an image without
control). (2) Over the API, the SDXL pair generates (256², 2 steps): the image differs from the same prompt with
strength 0.

Needs the live models of ``make_models.py --sdxl`` (MODELS/Stable-diffusion/random_sd15.safetensors,
random_sdxl.safetensors and MODELS/ControlNet/control_colorstroke_sdxl.safetensors), COMFYUI_DIR, Playwright and
Debian's chromium. Not in CI (the SDXL files are 9 GiB). Run from the repository root with the hosts' Python:

    PYTHONPATH=. .venv-hosts/bin/python tests/live/comfy_family_case.py /work/live/models --out docs/comfyui
"""
from __future__ import annotations

import argparse
import json
import pathlib
import shutil
import sys
import tempfile

import numpy as np

from tests.comfy_server import EXAMPLE_SDXL, FOLDER, comfyui_server, http, run_prompt

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
EXPECTED = ("'control_colorstroke_sdxl.safetensors' is an SDXL ControlNet, but the checkpoint being sampled is SD 1.5",
            "use an SD 1.5 Color Stroke ControlNet with it, or this ControlNet with an SDXL checkpoint")


def set_widget(page, node_type: str, name: str, value) -> None:
    page.evaluate(f"""() => {{ const node = window.app.graph.findNodesByType({json.dumps(node_type)})[0];
        node.widgets.find(w => w.name === {json.dumps(name)}).value = {json.dumps(value)}; }}""")


def sdxl_prompt(strength: float) -> dict:
    """The SDXL example's graph as an API prompt at 256², 2 steps, on the example drawing and strokes."""
    return {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "random_sdxl.safetensors"}},
        "2": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["1", 1]}},
        "3": {"class_type": "ColorStrokePainter", "inputs": {
            "image": "color_stroke_example.png", "strokes": "colorstroke/color_stroke_example_strokes.png"}},
        "4": {"class_type": "ColorStrokeCanny", "inputs": {
            "lineart": ["3", 0], "strokes": ["3", 1], "strokes_mask": ["3", 2], "edge_source": "canny", "low": 100,
            "high": 200, "mask_marks": "no_stroke", "background": "#FFFFFF", "resolution": 256}},
        "5": {"class_type": "LoadColorStrokeControlNet", "inputs": {
            "control_net_name": "control_colorstroke_sdxl.safetensors", "polarity_if_unknown": "white_on_black"}},
        "6": {"class_type": "ApplyColorStrokeControlNet", "inputs": {
            "positive": ["2", 0], "negative": ["2", 0], "control_net": ["5", 0], "hint": ["4", 0],
            "strength": strength, "start_percent": 0.0, "end_percent": 1.0}},
        "7": {"class_type": "EmptyLatentImage", "inputs": {"width": 256, "height": 256, "batch_size": 1}},
        "8": {"class_type": "KSampler", "inputs": {
            "model": ["1", 0], "positive": ["6", 0], "negative": ["6", 1], "latent_image": ["7", 0], "seed": 1,
            "control_after_generate": "fixed", "steps": 2, "cfg": 6.0, "sampler_name": "euler",
            "scheduler": "normal", "denoise": 1.0}},
        "9": {"class_type": "VAEDecode", "inputs": {"samples": ["8", 0], "vae": ["1", 2]}},
        "10": {"class_type": "SaveImage", "inputs": {"images": ["9", 0], "filename_prefix": f"sdxl_{strength:g}"}},
    }


def generated(url: str, base: pathlib.Path, strength: float):
    """The image (HxWx3 uint8) the SDXL prompt saves at ``strength``, and its history status."""
    from PIL import Image

    entry = run_prompt(url, sdxl_prompt(strength), timeout=1800)
    images = [image for output in entry["outputs"].values() for image in output.get("images", [])]
    if not images:
        return None, entry["status"]
    return np.asarray(Image.open(base / "output" / images[0]["filename"]).convert("RGB")), entry["status"]


def generate_case(url: str, base: pathlib.Path, out: pathlib.Path) -> dict:
    """(2) of the module: the SDXL pair over the API, with and without the ControlNet's effect."""
    from PIL import Image

    controlled, status = generated(url, base, 1.0)
    plain, _ = generated(url, base, 0.0)
    passed = controlled is not None and plain is not None
    change = float(np.abs(controlled.astype(np.float32) - plain).mean()) if passed else None
    if passed:
        Image.fromarray(np.concatenate([plain, controlled], axis=1)).save(out / "sdxl-generated.png")
    return {"case": "SDXL checkpoint with the SDXL Color Stroke ControlNet, over the API (256², 2 steps)",
            "expected": "an image that differs from strength 0", "passed": bool(passed and change > 1.0),
            "vs_strength_0": change, "status": status.get("status_str"),
            "mean_and_spread": None if not passed else [float(plain.mean()), float(plain.std())]}


def run(models: pathlib.Path, out: pathlib.Path) -> list[dict]:
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="comfy_family_") as folder:
        base = pathlib.Path(folder)
        for kind, source in (("checkpoints", models / "Stable-diffusion" / "random_sd15.safetensors"),
                             ("checkpoints", models / "Stable-diffusion" / "random_sdxl.safetensors"),
                             ("controlnet", models / "ControlNet" / "control_colorstroke_sdxl.safetensors")):
            (base / "models" / kind).mkdir(parents=True, exist_ok=True)
            (base / "models" / kind / source.name).symlink_to(source)
        with comfyui_server(base, inputs=()) as url, sync_playwright() as playwright:
            assert http(url + "/settings/Comfy.TutorialCompleted", True)[0] == 200
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1500, "height": 950})
            page.goto(url, wait_until="networkidle")
            page.wait_for_function("window.app && window.app.graph && window.app.extensionManager", timeout=90_000)
            page.evaluate("() => window.app.extensionManager.command.execute('Comfy.BrowseTemplates')")
            page.locator(".p-dialog").get_by_text(FOLDER, exact=True).first.click()
            page.locator(".p-dialog").get_by_text(EXAMPLE_SDXL, exact=True).click()
            page.wait_for_function("window.app.graph.findNodesByType('KSampler').length === 1", timeout=30_000)
            set_widget(page, "CheckpointLoaderSimple", "ckpt_name", "random_sd15.safetensors")  # the wrong family
            set_widget(page, "EmptyLatentImage", "width", 256)
            set_widget(page, "EmptyLatentImage", "height", 256)
            set_widget(page, "KSampler", "steps", 2)
            page.evaluate("() => window.app.queuePrompt(0, 1)")
            dialog = page.get_by_text(EXPECTED[0])
            dialog.first.wait_for(timeout=600_000)
            page.wait_for_timeout(1000)
            page.screenshot(path=str(out / "family-mismatch.png"))
            shown = page.locator("body").inner_text()
            browser.close()
            log = (base / "server.log").read_text()
            results = [{"case": "SDXL Color Stroke ControlNet with an SD 1.5 checkpoint, queued from the page",
                        "expected": "ComfyUI's error dialog names both families and what to pick",
                        "passed": all(phrase in shown for phrase in EXPECTED) and "size mismatch" not in log,
                        "dialog": next((line for line in shown.splitlines() if EXPECTED[0] in line), "")},
                       generate_case(url, base, out)]
    (out / "family-mismatch.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(results, indent=2))
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("models", type=pathlib.Path, help="the folder make_models.py --sdxl wrote")
    parser.add_argument("--out", type=pathlib.Path, required=True, help="where the screenshot and result go")
    args = parser.parse_args()
    return 0 if all(result["passed"] for result in run(args.models, args.out)) else 1


if __name__ == "__main__":
    sys.exit(main())

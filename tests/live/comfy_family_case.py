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

import json
import pathlib
import shutil
import sys
import tempfile

import numpy as np

from tests.comfy_server import EXAMPLE_SDXL, FOLDER, comfyui_server, example_prompt, http, live_main, saved_image

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
EXPECTED = ("'control_colorstroke_sdxl.safetensors' is an SDXL ControlNet, but the checkpoint being sampled is SD 1.5",
            "use an SD 1.5 Color Stroke ControlNet with it, or this ControlNet with an SDXL checkpoint")


def set_widget(page, node_type: str, name: str, value) -> None:
    page.evaluate(f"""() => {{ const node = window.app.graph.findNodesByType({json.dumps(node_type)})[0];
        node.widgets.find(w => w.name === {json.dumps(name)}).value = {json.dumps(value)}; }}""")


def generated(url: str, base: pathlib.Path, strength: float):
    """The image (HxWx3) the SDXL pair saves at ``strength``, and its history status."""
    return saved_image(url, base, example_prompt("random_sdxl.safetensors", "control_colorstroke_sdxl.safetensors",
                                                 strength, f"sdxl_{strength:g}"))


def generate_case(url: str, base: pathlib.Path, out: pathlib.Path) -> dict:
    """(2) of the module: the SDXL pair over the API, with and without the ControlNet's effect."""
    from PIL import Image

    controlled, status = generated(url, base, 1.0)
    plain, _ = generated(url, base, 0.0)
    passed = controlled is not None and plain is not None
    change = float(np.abs(controlled.astype(np.float32) - plain).mean()) if passed else None
    if passed:
        Image.fromarray(np.concatenate([plain, controlled], axis=1).astype(np.uint8)).save(
            out / "sdxl-generated.png")
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


if __name__ == "__main__":
    sys.exit(live_main(__doc__, run))

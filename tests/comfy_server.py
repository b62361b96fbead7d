"""A real ComfyUI server (``main.py --cpu``) with this package in its custom_nodes, for the host tests.

Used by test_comfy_host.py (HTTP) and test_comfy_browser.py (the page in Chromium). Needs COMFYUI_DIR
and a Python with ComfyUI's requirements.
"""
import contextlib
import json
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

COMFYUI_DIR = os.environ.get("COMFYUI_DIR")
ROOT = pathlib.Path(__file__).resolve().parent.parent
FOLDER = "ColorStrokeControlNet"  # the clone's folder name in custom_nodes
EXAMPLE = "Color Stroke - colour a line drawing"  # the example workflow (and its thumbnail), without extension
EXAMPLE_SDXL = "Color Stroke SDXL - colour a line drawing at 1024"  # the same for SDXL-architecture checkpoints


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http(url, body=None, timeout=30):
    """(status, JSON answer) of a GET, or of a POST of ``body`` as JSON."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


@contextlib.contextmanager
def comfyui_server(base: pathlib.Path, inputs=("lineart.png", "strokes.png")):
    """Run ComfyUI with ``base`` as its base directory (custom_nodes holding this package, the example images
    named in ``inputs`` in input/); yields its URL and stops it afterwards."""
    for folder in ("custom_nodes", "input", "output", "user", "models/controlnet"):
        (base / folder).mkdir(parents=True, exist_ok=True)
    (base / "custom_nodes" / FOLDER).symlink_to(ROOT, target_is_directory=True)
    for name in inputs:
        shutil.copy(ROOT / "example_workflows" / name, base / "input" / name)
    port = free_port()
    log = open(base / "server.log", "w")
    process = subprocess.Popen(
        [sys.executable, "main.py", "--cpu", "--listen", "127.0.0.1", "--port", str(port),
         "--base-directory", str(base), "--disable-auto-launch", "--disable-api-nodes", "--database-url", "sqlite:///:memory:"],
        cwd=COMFYUI_DIR, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            assert process.poll() is None, (base / "server.log").read_text()[-3000:]
            try:
                if http(url + "/system_stats", timeout=5)[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, ("ComfyUI did not start in 180 s:\n"
                                                 + (base / "server.log").read_text()[-3000:])
            time.sleep(1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)
        log.close()


def run_prompt(url, prompt, timeout=120):
    """Queue an API prompt and wait for it; returns its history entry (status and outputs)."""
    status, queued = http(url + "/prompt", {"prompt": prompt})
    assert status == 200 and queued["node_errors"] == {}, queued
    deadline = time.monotonic() + timeout
    while True:
        history = http(f"{url}/history/{queued['prompt_id']}")[1]
        entry = history.get(queued["prompt_id"])
        if entry and (entry["status"]["completed"] or entry["status"]["status_str"] == "error"):
            return entry
        assert time.monotonic() < deadline, f"the prompt did not finish in {timeout} s"
        time.sleep(0.5)


def example_prompt(checkpoint: str, control_net: str, strength: float, prefix: str) -> dict:
    """The example workflow's graph as an API prompt at 256², 2 steps (seed 1, the example drawing and strokes):
    ``checkpoint`` in Load Checkpoint, ``control_net`` in Load Color Stroke ControlNet at ``strength``, the image
    saved under ``prefix``."""
    return {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": checkpoint}},
        "2": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["1", 1]}},
        "3": {"class_type": "ColorStrokePainter", "inputs": {
            "image": "color_stroke_example.png", "strokes": "colorstroke/color_stroke_example_strokes.png"}},
        "4": {"class_type": "ColorStrokeCanny", "inputs": {
            "lineart": ["3", 0], "strokes": ["3", 1], "strokes_mask": ["3", 2], "edge_source": "canny", "low": 100,
            "high": 200, "mask_marks": "no_stroke", "background": "#FFFFFF", "resolution": 256}},
        "5": {"class_type": "LoadColorStrokeControlNet", "inputs": {
            "control_net_name": control_net, "polarity_if_unknown": "white_on_black"}},
        "6": {"class_type": "ApplyColorStrokeControlNet", "inputs": {
            "positive": ["2", 0], "negative": ["2", 0], "control_net": ["5", 0], "hint": ["4", 0],
            "strength": strength, "start_percent": 0.0, "end_percent": 1.0}},
        "7": {"class_type": "EmptyLatentImage", "inputs": {"width": 256, "height": 256, "batch_size": 1}},
        "8": {"class_type": "KSampler", "inputs": {
            "model": ["1", 0], "positive": ["6", 0], "negative": ["6", 1], "latent_image": ["7", 0], "seed": 1,
            "control_after_generate": "fixed", "steps": 2, "cfg": 6.0, "sampler_name": "euler",
            "scheduler": "normal", "denoise": 1.0}},
        "9": {"class_type": "VAEDecode", "inputs": {"samples": ["8", 0], "vae": ["1", 2]}},
        "10": {"class_type": "SaveImage", "inputs": {"images": ["9", 0], "filename_prefix": prefix}},
    }


def saved_image(url: str, base: pathlib.Path, prompt: dict):
    """Run ``prompt`` on the server at ``url`` (base directory ``base``): (the first image it saved as HxWx3 float32,
    or None, its history status)."""
    import numpy as np
    from PIL import Image

    entry = run_prompt(url, prompt, timeout=1800)
    images = [image for output in entry["outputs"].values() for image in output.get("images", [])]
    if not images:
        return None, entry["status"]
    return np.asarray(Image.open(base / "output" / images[0]["filename"]).convert("RGB"), np.float32), entry["status"]


def live_main(doc: str, run) -> int:
    """The command line of a tests/live ComfyUI case: ``MODELS --out DIR``; exit 0 when every result of ``run(models,
    out)`` passed."""
    import argparse

    parser = argparse.ArgumentParser(description=doc.split("\n")[0])
    parser.add_argument("models", type=pathlib.Path, help="the folder tests/live/make_models.py wrote")
    parser.add_argument("--out", type=pathlib.Path, required=True, help="where the images and results go")
    args = parser.parse_args()
    return 0 if all(result["passed"] for result in run(args.models, args.out)) else 1

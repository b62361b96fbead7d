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

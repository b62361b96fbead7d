"""ComfyUI with a control-LoRA, over the API: the live SD 1.5 Color Stroke ControlNet as a rank-8 control-LoRA whose
differences are moved (so ComfyUI must add them), loaded by our Load node (ComfyUI's ``ControlLora``) and rebuilt on
the checkpoint being sampled. Expected: at 256², 2 steps, the image equals the one from the same model written in
full (the differences merged; the live ControlNet's copied encoder is the checkpoint's own, as a control-LoRA assumes)
and differs from strength 0.

Needs the live models of ``make_models.py`` (MODELS/Stable-diffusion/random_sd15.safetensors and the control-LoRA
pair in MODELS/ControlNet: ``make_models.py MODELS --control_lora_only`` adds it to older folders) and COMFYUI_DIR.
Not in CI. Run from the repository root with the hosts' Python:

    PYTHONPATH=. .venv-hosts/bin/python tests/live/comfy_control_lora_case.py /work/live/models --out docs/comfyui
"""
from __future__ import annotations

import json
import pathlib
import sys
import tempfile

import numpy as np

from tests.comfy_server import comfyui_server, example_prompt, live_main, saved_image
from tests.live.make_models import CONTROL_LORA as LORA
from tests.live.make_models import CONTROL_LORA_MERGED as MERGED


def generated(url: str, base: pathlib.Path, control_net: str, strength: float):
    """The image (HxWx3 float32) the SD 1.5 example saves with ``control_net`` at ``strength``, and its status."""
    return saved_image(url, base, example_prompt("random_sd15.safetensors", control_net, strength, "control_lora"))


def run(models: pathlib.Path, out: pathlib.Path) -> list[dict]:
    from PIL import Image

    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="comfy_control_lora_") as folder:
        base = pathlib.Path(folder)
        (base / "models" / "checkpoints").mkdir(parents=True)
        (base / "models" / "controlnet").mkdir(parents=True)
        (base / "models" / "checkpoints" / "random_sd15.safetensors").symlink_to(
            models / "Stable-diffusion" / "random_sd15.safetensors")
        for name in (LORA, MERGED):
            (base / "models" / "controlnet" / name).symlink_to(models / "ControlNet" / name)
        with comfyui_server(base, inputs=()) as url:
            lora, status = generated(url, base, LORA, 1.0)
            merged, _ = generated(url, base, MERGED, 1.0)
            plain, _ = generated(url, base, LORA, 0.0)
            log = (base / "server.log").read_text()
    passed = all(image is not None for image in (lora, merged, plain))
    result = {"case": "SD 1.5 control-LoRA (rank 8, differences moved) through Load Color Stroke ControlNet, over the "
                      "API (256², 2 steps)",
              "expected": "ComfyUI loads it as ControlLora; the image equals the merged full model's and differs from "
                          "strength 0",
              "status": status.get("status_str"), "lora_vs_merged": None, "lora_vs_strength_0": None}
    if passed:
        result["lora_vs_merged"] = float(np.abs(lora - merged).mean())
        result["lora_vs_strength_0"] = float(np.abs(lora - plain).mean())
        Image.fromarray(np.concatenate([plain, lora, merged], axis=1).astype(np.uint8)).save(
            out / "control-lora-generated.png")
    result["server_log_errors"] = [line for line in log.splitlines() if "Error" in line or "Traceback" in line][:10]
    result["passed"] = bool(passed and result["lora_vs_merged"] < 0.5 and result["lora_vs_strength_0"] > 1.0
                            and "size mismatch" not in log)
    (out / "control-lora.json").write_text(json.dumps([result], indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))
    return [result]


if __name__ == "__main__":
    sys.exit(live_main(__doc__, run))

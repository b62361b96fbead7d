"""What the tests share: tiny diffusers models, pictures and folders for the trainer, a tiny-run config,
stand-ins for the A1111/Forge webui, and the repo imported as ComfyUI imports it. Import from here
(``from tests.helpers import tiny_config``); the pytest fixtures built on them are in conftest.py.
"""
from __future__ import annotations

import base64
import contextlib
import importlib.util
import io
import sys
import textwrap
import types
from pathlib import Path

import numpy as np
from PIL import Image

# --- tiny diffusers models for the model/ tests (built in code, no download) ---------------------------

TINY_CROSS_ATTENTION_DIM = 32


def tiny_unet(cross_attention_dim: int = TINY_CROSS_ATTENTION_DIM, seed: int = 0):
    """A random SD-shaped UNet2DConditionModel: 2 levels (32, 64), 1 layer each, 8 heads, latents 4 x 8 x 8."""
    import torch
    from diffusers import UNet2DConditionModel

    torch.manual_seed(seed)
    return UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, block_out_channels=(32, 64), layers_per_block=1,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=cross_attention_dim, attention_head_dim=8, norm_num_groups=32,
    )


def randomise_outputs(controlnet, seed: int = 1, std: float = 0.1):
    """Give the zero-initialised convolutions random weights, so that comparisons of residuals mean something."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    modules = [*controlnet.controlnet_down_blocks, controlnet.controlnet_mid_block,
               controlnet.controlnet_cond_embedding.conv_out]
    with torch.no_grad():
        for module in modules:
            for parameter in module.parameters():
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * std)
    return controlnet


def residuals_of(controlnet, inputs):
    """All 1 + len(down) residuals of ``controlnet`` for ``inputs`` = (sample, timestep, text, hint[, added]), as a
    list; ``added``: SDXL's added conditions (``text_embeds``, ``time_ids``)."""
    import torch

    sample, timestep, text, hint, *added = inputs
    with torch.no_grad():
        down, mid = controlnet(sample, timestep, encoder_hidden_states=text, controlnet_cond=hint,
                               added_cond_kwargs=added[0] if added else None, return_dict=False)
    return [*down, mid]


def max_difference(first, second) -> float:
    """Largest absolute difference between two equally long lists of tensors (compared in fp32)."""
    assert len(first) == len(second)
    return max(float((a.float() - b.float()).abs().max()) for a, b in zip(first, second, strict=True))


# --- the trainer tests: pictures, small image folders, a tiny-run config -----------------------------------

def colourful(seed: int, height: int = 40, width: int = 48) -> np.ndarray:
    """An HxWx3 uint8 picture with edges and colours: random coloured rectangles on a gradient."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    pixels = np.stack([x * 255 // width, y * 255 // height, np.full_like(x, 128)], axis=2).astype(np.uint8)
    for _ in range(4):
        top, left = rng.integers(0, height - 8), rng.integers(0, width - 8)
        pixels[top : top + rng.integers(4, 12), left : left + rng.integers(4, 12)] = rng.integers(0, 256, 3)
    return pixels


def write_folder(folder, count: int = 8, captions: bool = True, size=(40, 48)):
    """``count`` PNG pictures (with sidecar captions unless ``captions`` is False) in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        Image.fromarray(colourful(i, *size)).save(folder / f"img{i:02d}.png")
        if captions:
            (folder / f"img{i:02d}.txt").write_text(f"picture number {i}", encoding="utf-8")
    return folder


def tiny_config(base, data, output, **overrides):
    """A TrainConfig for a few-second CPU run at 32x32 (deterministic: fp32 on any device; no workers, no tracker)."""
    from training.config import TrainConfig

    values = dict(
        base_model=str(base), data=str(data), output_dir=str(output), allow_non_sd15=True, resolution=32,
        max_train_steps=4, train_batch_size=2, gradient_accumulation_steps=1, learning_rate=1e-4, num_workers=0,
        checkpointing_steps=2, validation_steps=0, num_validation_samples=1, validation_inference_steps=2,
        report_to="none", export_dtype="fp32", mixed_precision="no",
        strokes={"length_min": 10, "length_max": 40, "thickness": (0, 1)},
    )
    values.update(overrides)
    return TrainConfig(**values)


# --- scripts/colorstroke.py loaded as A1111 and Forge load it, beside stand-ins for gradio and the webui --------

ENTRY = Path(__file__).resolve().parents[1] / "scripts" / "colorstroke.py"
STANDINS = {
    "gradio/__init__.py": """
        created = []

        class Block:
            def __init__(self, *args, **kwargs):
                self.args, self.kwargs = args, kwargs
                self.value, self.label = kwargs.get("value"), kwargs.get("label")
                self.listeners = []
                created.append(self)

            def change(self, fn, inputs=None, outputs=None, **kwargs):
                self.listeners.append((fn, inputs, outputs))

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                return False

        class Accordion(Block): pass
        class Checkbox(Block): pass
        class HTML(Block): pass
        class Image(Block): pass
        class Markdown(Block): pass
        class Slider(Block): pass
        class Textbox(Block): pass
    """,
    "gradio/component_meta.py": "def create_or_modify_pyi(*args, **kwargs):\n    pass\n",
    "gradio/context.py": """
        class RootBlock:
            def load(self, *args, **kwargs):
                pass

        class Context:
            root_block = RootBlock()
    """,
    "modules/__init__.py": "",
    "modules/scripts.py": "class Script: pass\nAlwaysVisible = object()\n",
    "modules/script_callbacks.py": """
        unloaded = []

        def on_script_unloaded(callback, *, name=None):
            unloaded.append(callback)
    """,
}


def write_standins(folder: Path, files: dict = STANDINS) -> Path:
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return folder


@contextlib.contextmanager
def webui(folder: Path):
    """The stand-ins first on sys.path; afterwards their modules are forgotten."""
    sys.path.insert(0, str(folder))
    try:
        yield
    finally:
        sys.path.remove(str(folder))
        for name in [n for n in sys.modules if n.split(".")[0] in ("gradio", "modules")]:
            del sys.modules[name]


def load_entry():
    """As ``modules.script_loading.load_module``: a standalone module named after the file."""
    spec = importlib.util.spec_from_file_location(ENTRY.name, ENTRY)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def png_base64(layer: np.ndarray) -> str:
    """An API call's stroke layer: a PNG (RGBA for HxWx4, RGB for HxWx3) as a data URL."""
    buffer = io.BytesIO()
    Image.fromarray(layer, "RGBA" if layer.shape[2] == 4 else "RGB").save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def processing(*units):
    """A stand-in for the webui's StableDiffusionProcessing: ``init`` is what process_images_inner calls
    (after every script's ``process``); ``units`` are its ControlNet units (``UnitRequest``)."""
    p = types.SimpleNamespace(inits=[], units=list(units), extra_generation_params={})
    p.init = lambda prompts, seeds, subseeds: p.inits.append(prompts)
    return p


# --- the repo as ComfyUI imports it ----------------------------------------------------------------------

COMFY_PACKAGE = "color_stroke_nodes_under_test"


def comfy_module(name: str):
    """The module ``name`` (e.g. "nodes.hint_tensors") of the repo imported as a package under a test name, as
    ComfyUI imports the clone folder, so that the nodes' relative imports work (the package once per process)."""
    if COMFY_PACKAGE not in sys.modules:
        root = Path(__file__).resolve().parents[1]
        spec = importlib.util.spec_from_file_location(COMFY_PACKAGE, root / "__init__.py",
                                                      submodule_search_locations=[str(root)])
        module = importlib.util.module_from_spec(spec)
        sys.modules[COMFY_PACKAGE] = module
        spec.loader.exec_module(module)
    return importlib.import_module(f"{COMFY_PACKAGE}.{name}")


# SDXL's ControlNet at full size (its UNet's encoder, as ControlNetModel.from_unet copies it) with the 5-channel hint:
# the host tests' SDXL-sized file and the live checks' SDXL model (1.25 B parameters)
def _sdxl_controlnet_config() -> dict:
    from model.families import SDXL_UNET_CONFIG

    skip = ("sample_size", "in_channels", "out_channels", "up_block_types")
    return {**{k: v for k, v in SDXL_UNET_CONFIG.items() if k not in skip}, "conditioning_channels": 5}


SDXL_CONTROLNET_CONFIG = _sdxl_controlnet_config()

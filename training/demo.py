"""``--demo [sd15|sdxl]``: the built-in tiny run. Makes a tiny random base of the family (SD 1.5- or SDXL-shaped)
and a folder of scikit-image pictures with captions under OUTPUT_DIR (unless --base_model / --data are given), then
trains as usual."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

# scikit-image's bundled pictures (no download) and their captions; "camera" is greyscale on purpose.
DEMO_PICTURES = {
    "astronaut": "a portrait of an astronaut in a white suit in front of a flag",
    "chelsea": "a ginger cat looking to the side",
    "coffee": "a cup of coffee on a saucer",
    "rocket": "a rocket on a launch pad under a blue sky",
    "immunohistochemistry": "a microscope image of stained tissue",
    "colorwheel": "a colour wheel",
    "hubble_deep_field": "galaxies in deep space",
    "camera": "a black and white photo of a man with a camera",
}


def write_demo_images(folder, names=tuple(DEMO_PICTURES)) -> Path:
    """Write the chosen scikit-image pictures as PNG with sidecar .txt captions into ``folder``."""
    import skimage.data

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        pixels = np.asarray(getattr(skimage.data, name)())
        Image.fromarray(pixels).save(folder / f"{name}.png")
        (folder / f"{name}.txt").write_text(DEMO_PICTURES[name], encoding="utf-8")
    return folder


def prepare_demo(config) -> None:
    """Fill ``config.base_model`` / ``config.data`` with the tiny base of ``config.demo``'s family and the pictures
    when not given."""
    from .tiny_base import save_tiny_base

    output = Path(config.output_dir)
    if not config.base_model:
        base = output / ("demo_base" if config.demo == "sd15" else f"demo_base_{config.demo}")
        if not (base / "model_index.json").is_file():
            save_tiny_base(base, seed=config.seed, family=config.demo)
        config.base_model = str(base)
    if not config.data:
        data = output / "demo_data"
        if not any(data.glob("*.png")):
            write_demo_images(data)
        config.data, config.data_source = str(data), "folder"

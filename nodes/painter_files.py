"""The Color Stroke Painter's files in ComfyUI's input folder -> IMAGE and MASK tensors (host-free: torch,
numpy, PIL).

A painter node names two files relative to the input folder:
- the drawing, as Load Image's list names it; after the frontend's Mask Editor it is
  ``clipspace/clipspace-painted-masked-<ts>.png`` (the drawing with the paint burnt in), and the
  editor saved the untouched drawing (``clipspace-mask-<ts>.png``, its RGB) and the paint layer
  (``clipspace-paint-<ts>.png``, a transparent PNG) beside it: those two are read instead;
- the stroke layer its canvas uploaded (a transparent PNG, ``colorstroke/<name>.png``), or "" for none.
  After the Mask Editor, the frontend puts the paint layer's name there (it fills the widget after
  ``image``), and the canvas shows it; with no stroke layer named, a Mask Editor's paint layer is used.
"""
from __future__ import annotations

import os
import re
import shutil

import numpy as np
import torch

from ..preprocessors import HintError, load_image
from ..preprocessors.image_io import to_float

STROKE_FOLDER = "colorstroke"  # where the canvas uploads stroke layers, inside ComfyUI's input folder
EXAMPLE_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "example_workflows")
# bundled example file -> its name in the input folder (the example workflow's painter names these)
EXAMPLE_FILES = {"lineart.png": "color_stroke_example.png",
                 "strokes.png": f"{STROKE_FOLDER}/color_stroke_example_strokes.png"}
_MASK_EDITOR_RESULT = re.compile(r"^clipspace/clipspace-painted(?:-masked)?-(\d+)\.png$")


def plain_name(name: str) -> str:
    """A file name as the frontend sends it, without ComfyUI's " [input]" annotation, with "/" separators."""
    name = name.strip().replace("\\", "/")
    return name[: -len("[input]")].rstrip() if name.endswith("[input]") else name


def mask_editor_layers(drawing: str) -> tuple[str, str] | None:
    """(untouched drawing, paint layer) names for a drawing the Mask Editor saved; None for any other name."""
    match = _MASK_EDITOR_RESULT.match(plain_name(drawing))
    if match is None:
        return None
    stamp = match.group(1)
    return f"clipspace/clipspace-mask-{stamp}.png", f"clipspace/clipspace-paint-{stamp}.png"


def input_path(input_dir: str, name: str, what: str) -> str:
    """The path of ``name`` inside ``input_dir``; HintError for a name that leaves it or a missing file."""
    root = os.path.realpath(input_dir)
    path = os.path.realpath(os.path.join(root, plain_name(name)))
    if os.path.commonpath([root, path]) != root:
        raise HintError(f"{what} {name!r} is outside ComfyUI's input folder")
    if not os.path.isfile(path):
        raise HintError(f"{what} {plain_name(name)!r} is not in ComfyUI's input folder; upload it again "
                        "(or, for a stroke layer, paint again or press Clear)")
    return path


def files_read(input_dir: str, drawing: str, strokes: str) -> tuple[str, str | None]:
    """(drawing path, stroke layer path or None): the files a painter node reads for these names."""
    layers = mask_editor_layers(drawing)
    if layers is not None:
        drawing, strokes = layers[0], strokes or layers[1]
    return (input_path(input_dir, drawing, "drawing"),
            input_path(input_dir, strokes, "stroke layer") if strokes else None)


def rgba(path: str, what: str) -> np.ndarray:
    """An image file as HxWx4 float32 straight (not premultiplied) RGBA in [0, 1]."""
    image = to_float(load_image(path), what)
    if image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    if image.shape[2] == 3:
        image = np.concatenate([image, np.ones_like(image[..., :1])], axis=2)
    return image


def read_painting(input_dir: str, drawing: str, strokes: str, drawing_size: tuple[int, int] | None = None):
    """The painter's outputs for its two file names.

    Returns (drawing IMAGE 1xHxWx3, strokes IMAGE 1xhxwx3 straight RGB with 0 where nothing is painted,
    strokes_mask MASK 1xhxw with 1 where nothing is painted, as Load Image's MASK of a transparent PNG),
    all float32 in [0, 1]. No stroke layer gives an empty layer of the drawing's size. A layer of another
    size than the drawing is left as it is (Color Stroke + Canny stretches it and says so).
    drawing_size: (H, W) of a drawing wired into the node instead of the file; the drawing file is then not
    read and None is returned in its place.
    """
    drawing_path, strokes_path = files_read(input_dir, drawing, strokes)
    picture = None if drawing_size else rgba(drawing_path, "drawing")
    if strokes_path:
        layer = rgba(strokes_path, "stroke layer")
    else:
        layer = np.zeros(tuple(drawing_size or picture.shape[:2]) + (4,), np.float32)
    alpha = layer[..., 3]
    rgb = layer[..., :3] * (alpha[..., None] > 0)
    return (None if picture is None else batch_of_one(picture[..., :3])), batch_of_one(rgb), batch_of_one(1.0 - alpha)


def batch_of_one(array: np.ndarray):
    """A numpy image -> a float32 torch batch holding it."""
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))[None]


def put_examples(input_dir: str) -> None:
    """Copy the bundled example drawing and stroke layer into the input folder where they are missing."""
    for source, name in EXAMPLE_FILES.items():
        target = os.path.join(input_dir, *name.split("/"))
        if not os.path.exists(target):
            os.makedirs(os.path.dirname(target), exist_ok=True)
            shutil.copyfile(os.path.join(EXAMPLE_DIR, source), target + ".part")
            os.replace(target + ".part", target)

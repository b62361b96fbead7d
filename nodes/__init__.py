"""ComfyUI glue: the node classes over ``preprocessors`` and ``model``, and their mappings.

- ``node_classes``: the five nodes, as ComfyUI reads them;
- ``hint_tensors``: their tensor work, host-free (IMAGE/MASK -> STROKE_HINT, the hint for a model, the overlay);
- ``painter_files``: the painter's files in ComfyUI's input folder -> tensors, host-free;
- ``comfy_host``: what needs ComfyUI itself (its ``nodes`` module, ControlNet loader, temp folder);
- ``names``: shared names, and ``tell`` (log + a toast on the page).

Importing this needs neither torch nor ComfyUI: node functions import them when they run.
"""
from .node_classes import (
    ApplyColorStrokeControlNet,
    ColorStrokeCanny,
    ColorStrokePainter,
    LineartOverlay,
    LoadColorStrokeControlNet,
)

NODE_CLASS_MAPPINGS = {
    "ColorStrokePainter": ColorStrokePainter,
    "ColorStrokeCanny": ColorStrokeCanny,
    "LoadColorStrokeControlNet": LoadColorStrokeControlNet,
    "ApplyColorStrokeControlNet": ApplyColorStrokeControlNet,
    "ColorStrokeLineartOverlay": LineartOverlay,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "ColorStrokePainter": "Color Stroke Painter",
    "ColorStrokeCanny": "Color Stroke + Canny",
    "LoadColorStrokeControlNet": "Load Color Stroke ControlNet",
    "ApplyColorStrokeControlNet": "Apply Color Stroke ControlNet",
    "ColorStrokeLineartOverlay": "Lineart Overlay (multiply)",
}

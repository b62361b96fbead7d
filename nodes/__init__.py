"""ComfyUI glue: node classes over ``preprocessors`` and ``model``.

Importing this needs neither torch nor ComfyUI: node modules import them inside the functions that run.
"""
from .apply_node import ApplyColorStrokeControlNet
from .loader_node import LoadColorStrokeControlNet
from .overlay_node import LineartOverlay
from .painter_node import ColorStrokePainter
from .preprocess_node import ColorStrokeCanny

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

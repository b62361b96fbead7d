"""Names the ComfyUI glue shares, and how it tells the person something (host-free: no torch, no ComfyUI)."""
import logging
import sys

CATEGORY = "conditioning/color stroke"
IMAGE_CATEGORY = "image/color stroke"  # nodes that only work on images (the overlay)
DEFAULT_BACKGROUND = "#FFFFFF"  # the preprocessor's background colour widget, as parse_colour reads it
MASK_MARKS = ("no_stroke", "stroke")  # what a value of 1 in a stroke mask marks
STROKE_HINT = "STROKE_HINT"  # Bx5xHxW float32 torch tensor in [0, 1], edge channel white on black
# set by Load Color Stroke ControlNet on the CONTROL_NET it returns: the edge polarity the model expects
POLARITY_ATTR = "color_stroke_edge_polarity"
# set by Load Color Stroke ControlNet too: (the base family it is made for, its file name), checked as sampling starts
FAMILY_ATTR = "color_stroke_family"
# set by Load Color Stroke ControlNet too: how the model's training filled its strokes (``CheckpointInfo.fill``)
TRAINED_FILL_ATTR = "color_stroke_trained_fill"
# set by Color Stroke + Canny on the STROKE_HINT it returns: whether its strokes were filled between the lines
FILLED_ATTR = "color_stroke_filled"
NOTICE_EVENT = "color_stroke.notice"  # web/color_stroke.js shows these as toasts

log = logging.getLogger("color_stroke")


def tell(message: str, level: int = logging.WARNING) -> None:
    """Log ``message``; a warning is also shown on the ComfyUI page (a toast) when a ComfyUI server runs.

    The server is looked up in ``sys.modules``, not imported: nothing of ComfyUI is needed outside it.
    """
    log.log(level, "color stroke: %s", message)
    instance = getattr(getattr(sys.modules.get("server"), "PromptServer", None), "instance", None)
    if level >= logging.WARNING and instance is not None:
        instance.send_sync(NOTICE_EVENT, {"message": message})

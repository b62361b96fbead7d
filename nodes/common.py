"""Names shared by the node modules. Importing this needs neither torch nor ComfyUI."""
import logging

CATEGORY = "conditioning/color stroke"
IMAGE_CATEGORY = "image/color stroke"  # nodes that only work on images (the overlay)
DEFAULT_BACKGROUND = "#FFFFFF"  # the preprocessor's background colour widget, as parse_colour reads it
MASK_MARKS = ("no_stroke", "stroke")  # what a value of 1 in a stroke mask marks
STROKE_HINT = "STROKE_HINT"  # Bx5xHxW float32 torch tensor in [0, 1], edge channel white on black

# set by Load Color Stroke ControlNet on the CONTROL_NET it returns: the edge polarity the model expects
POLARITY_ATTR = "color_stroke_edge_polarity"

log = logging.getLogger("color_stroke")

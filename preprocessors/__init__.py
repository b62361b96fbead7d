"""Hint building for the Color Stroke + Canny ControlNet (host-free: numpy, OpenCV, optional torch).

See ``contract`` for the hint layout every part of the project shares.
"""
from .contract import (
    HINT_CHANNELS,
    HINT_FORMAT,
    HINT_VERSION,
    HintError,
    hint_preview,
    make_hint,
    make_hint_batch,
    strokes_removed,
    validate_hint,
)
from .edges import DEFAULT_CANNY, CannyThresholds, canny, canny_batch
from .fill import DEFAULT_FILL_ALPHA, FILL_GAP_HELP, FILL_HELP, MAX_FILL_GAP, default_gap, fill_strokes
from .hints import (
    EDGE_SOURCES,
    EdgeParams,
    inference_hint,
    lineart_edges,
    training_edges,
    training_edges_batch,
    training_hint,
)
from .image_io import load_image
from .polarity import (
    BLACK_ON_WHITE,
    DEFAULT_EDGE_POLARITY,
    EDGE_POLARITIES,
    UNRECORDED_EDGE_POLARITY,
    WHITE_ON_BLACK,
    check_polarity,
    resolve_polarity,
    to_model_polarity,
    unrecorded_polarity_note,
)
from .resize import (
    resize_drawing,
    resize_edges,
    resize_hint,
    resize_hint_batch,
    resize_strokes,
    short_side_size,
    stretch_note,
)
from .stroke_layer import (
    StrokeMisread,
    StrokeReading,
    check_not_the_drawing,
    check_off_the_lines,
    read_stroke_layer,
)
from .strokes import StrokeParams, random_strokes, user_strokes

__all__ = [
    "BLACK_ON_WHITE", "DEFAULT_CANNY", "DEFAULT_EDGE_POLARITY", "DEFAULT_FILL_ALPHA", "EDGE_POLARITIES",
    "EDGE_SOURCES", "HINT_CHANNELS", "HINT_FORMAT", "HINT_VERSION", "UNRECORDED_EDGE_POLARITY", "WHITE_ON_BLACK",
    "CannyThresholds", "EdgeParams", "FILL_GAP_HELP", "FILL_HELP", "MAX_FILL_GAP", "HintError", "StrokeMisread",
    "StrokeParams", "StrokeReading", "canny", "canny_batch", "check_not_the_drawing", "check_off_the_lines",
    "check_polarity", "default_gap", "fill_strokes", "hint_preview", "inference_hint", "lineart_edges",
    "load_image", "make_hint", "make_hint_batch", "random_strokes", "read_stroke_layer", "resize_drawing",
    "resize_edges", "resize_hint", "resize_hint_batch", "resize_strokes", "resolve_polarity", "short_side_size",
    "stretch_note", "strokes_removed", "to_model_polarity", "training_edges", "training_edges_batch",
    "training_hint", "unrecorded_polarity_note", "user_strokes", "validate_hint",
]

"""The one place ``model/`` reaches the hint contract of ``preprocessors/``."""
try:  # loaded as part of the repo package (ComfyUI, A1111 load the repo folder under the user's clone name)
    from ..preprocessors import (
        DEFAULT_EDGE_POLARITY,
        EDGE_POLARITIES,
        HINT_CHANNELS,
        HINT_FORMAT,
        HINT_VERSION,
        HintError,
        check_polarity,
        inference_hint,
        resize_hint,
    )
except ImportError:  # the repo root is on sys.path (tests, training/train.py)
    from preprocessors import (
        DEFAULT_EDGE_POLARITY,
        EDGE_POLARITIES,
        HINT_CHANNELS,
        HINT_FORMAT,
        HINT_VERSION,
        HintError,
        check_polarity,
        inference_hint,
        resize_hint,
    )

__all__ = [
    "DEFAULT_EDGE_POLARITY", "EDGE_POLARITIES", "HINT_CHANNELS", "HINT_FORMAT", "HINT_VERSION", "HintError",
    "check_polarity", "inference_hint", "resize_hint",
]

"""The one place ``model/`` reaches the hint contract of ``preprocessors/``: the names below, listed once."""
# ComfyUI imports the repo root as a package under the user's clone name: ``model`` is its sub-package and
# the relative import works. A1111 / Forge never import the root as a package: they run scripts/*.py as
# standalone modules with the root on sys.path (A1111 only while the file loads), so there, as in the tests
# and training/, ``model`` and ``preprocessors`` are top-level packages and the ImportError fallback is used.
try:  # a sub-package of the repo package (ComfyUI)
    from .. import preprocessors as _preprocessors
except ImportError:  # top-level packages, the repo root on sys.path (A1111 / Forge, tests, training/)
    import preprocessors as _preprocessors

# what model/ uses of the contract, each taken from ``preprocessors`` as it is (``from ._contract import NAME``)
CONTRACT_NAMES = (
    "BLACK_ON_WHITE", "DEFAULT_CANNY", "DEFAULT_EDGE_POLARITY", "EDGE_POLARITIES", "HINT_CHANNELS", "HINT_FORMAT",
    "HINT_VERSION", "UNRECORDED_EDGE_POLARITY", "WHITE_ON_BLACK", "HintError", "check_polarity", "inference_hint",
    "resize_hint", "resolve_polarity", "strokes_removed", "to_model_polarity", "unrecorded_polarity_note",
)
globals().update({name: getattr(_preprocessors, name) for name in CONTRACT_NAMES})
__all__ = list(CONTRACT_NAMES)

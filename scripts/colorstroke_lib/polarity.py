"""Which edge polarity to build the hint in: the checkpoint's, else the preprocessor's choice.

Checkpoints record their polarity (``model.inspect_checkpoint``); older ones, such as the original
colour-stroke checkpoint (black-on-white edges), do not, and then the preprocessor the person picked
decides: ``colorstroke_canny`` (the contract's default, white on black) or
``colorstroke_canny_black_on_white``.
"""
from __future__ import annotations

import os
from functools import lru_cache

from preprocessors import DEFAULT_EDGE_POLARITY, check_polarity

from . import import_own, tell_once

try:
    _inspect_checkpoint = import_own("model").inspect_checkpoint
    MODEL_IMPORT_ERROR = None
except (ImportError, AttributeError) as error:  # the hint still works; only the recorded polarity is unknown
    _inspect_checkpoint = None
    MODEL_IMPORT_ERROR = error

@lru_cache(maxsize=32)
def _recorded(path: str, mtime: float, size: int) -> str | None:
    return getattr(_inspect_checkpoint(path), "edge_polarity", None)


def checkpoint_polarity(path: str | None) -> str | None:
    """The edge polarity the checkpoint at ``path`` records; None if it records none or is unknown.

    The answer is cached per file version (path, modification time, size).
    """
    if not path or not os.path.isfile(path):
        return None
    if _inspect_checkpoint is None:
        tell_once(f"cannot read checkpoint metadata ({MODEL_IMPORT_ERROR}); the edge polarity comes from the preprocessor")
        return None
    stat = os.stat(path)
    try:
        return _recorded(path, stat.st_mtime, stat.st_size)
    except Exception as error:  # an unreadable or foreign file: the host reports it when it loads the model
        tell_once(f"cannot read the metadata of {path} ({error}); the edge polarity comes from the preprocessor")
        return None


def choose_polarity(recorded: str | None, chosen: str | None) -> tuple[str, str | None]:
    """(polarity, note): the recorded polarity wins; else the chosen one; else the contract's default.

    The note (or None) says why, when the person's choice is overridden or nothing decided it.
    """
    if chosen is not None:
        check_polarity(chosen)
    if recorded is not None:
        check_polarity(recorded)
        if chosen not in (None, recorded):
            return recorded, f"the model records {recorded} edges; using them instead of the preprocessor's {chosen}"
        return recorded, None
    if chosen is not None:
        return chosen, None
    return DEFAULT_EDGE_POLARITY, (
        f"the model does not record its edge polarity; using {DEFAULT_EDGE_POLARITY}. For the original "
        "colour-stroke checkpoint pick the preprocessor colorstroke_canny_black_on_white"
    )


def resolve(path: str | None, chosen: str | None) -> str:
    """The polarity for the checkpoint at ``path`` (None: no model in sight, as in a preview) and the
    preprocessor's choice. Prints the note of ``choose_polarity`` once per message when a model is in sight.
    """
    polarity, note = choose_polarity(checkpoint_polarity(path), chosen)
    if note and path:
        tell_once(note)
    return polarity

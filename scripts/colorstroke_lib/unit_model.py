"""The WebUI's view of a ControlNet unit's model file: is it a Color Stroke ControlNet, which edge polarity.

What the file is comes from ``model.inspect_checkpoint`` (cached per file version); the polarity rule is the
project's (``preprocessors.resolve_polarity``): the polarity the checkpoint records wins; else the one the
person chose by the preprocessor (``colorstroke_canny_white_on_black``); else black_on_white. The console
says so once per file. ``generation.Generation.model_polarity`` asks ``edge_polarity`` once per unit.
"""
from __future__ import annotations

import os
from functools import lru_cache

from model import check_color_stroke, inspect_checkpoint
from model.families import family_to_check
from preprocessors import resolve_polarity, unrecorded_polarity_note

from . import tell_once
from .hints import WHITE_ON_BLACK_PREPROCESSOR

# what to do with a 3-channel (standard) ControlNet picked for our preprocessor, in the WebUIs' words
STANDARD_REMEDY = ("in the ControlNet unit, pick that model's own preprocessor (such as canny) for it, or a Color "
                   "Stroke model for this preprocessor")


@lru_cache(maxsize=32)
def _inspect(path: str, mtime: float, size: int):
    return inspect_checkpoint(path)


def checkpoint_info(path: str | None):
    """``model.CheckpointInfo`` of the file at ``path``, cached per file version; None when there is no
    file, or it cannot be read (the host reports that when it loads the model)."""
    if not path or not os.path.isfile(path):
        return None
    stat = os.stat(path)
    try:
        return _inspect(path, stat.st_mtime, stat.st_size)
    except Exception as error:  # a foreign or damaged file
        tell_once(f"cannot read the metadata of {path} ({error}); taking it as recording no edge polarity")
        return None


def choose_polarity(recorded: str | None, chosen: str | None, source: str = "the model") -> tuple[str, str | None]:
    """(polarity, note): the ``recorded`` polarity wins; else the ``chosen`` one; else black_on_white.

    source: the model file's name, for the note. The note (or None) says why when the person's choice is
    overridden or when nothing decided.
    """
    polarity, decided_by = resolve_polarity(recorded, chosen)
    if decided_by == "metadata" and chosen not in (None, polarity):
        return polarity, f"{source} records {polarity} edges; using them instead of the preprocessor's {chosen}"
    if decided_by == "default":
        return polarity, unrecorded_polarity_note(source, f"pick the preprocessor {WHITE_ON_BLACK_PREPROCESSOR}")
    return polarity, None


def check_model(path: str | None, base: tuple[str, str] | None = None):
    """``checkpoint_info(path)``, after checking that the file is a Color Stroke ControlNet for ``base``.

    base: (family, name) of the checkpoint the WebUI samples (``sampled_base``); None when none is in sight (a
    preview), when the file is checked against its own family. Raises ``model.CheckpointError`` saying what the
    file is (a 3-channel Canny model, one of another family than the checkpoint's, ...) and what to do in a WebUI.
    None: no file, or one that cannot be read.
    """
    info = checkpoint_info(path)
    if info is not None:
        family, name = base or (family_to_check(info.family), "")
        check_color_stroke(info, source=os.path.basename(path), family=family, standard_remedy=STANDARD_REMEDY,
                           base_name=repr(name) if name else "")
    return info


def sampled_base(sd_model) -> tuple[str, str] | None:
    """(family, checkpoint name) of the WebUI's loaded model (A1111's and Forge's ``shared.sd_model`` carry
    ``is_sdxl`` / ``is_sd2`` and ``sd_checkpoint_info``); None when no model is loaded."""
    if sd_model is None:
        return None
    family = "sdxl" if getattr(sd_model, "is_sdxl", False) else "sd2" if getattr(sd_model, "is_sd2", False) else "sd15"
    info = getattr(sd_model, "sd_checkpoint_info", None)
    return family, str(getattr(info, "name", None) or "the loaded checkpoint")


def edge_polarity(path: str | None, chosen: str | None) -> str:
    """The edge polarity for the unit's model file (None: no model in sight, as in a preview).

    Raises ``model.CheckpointError`` as ``check_model`` does. Prints the note of ``choose_polarity``
    once per message when a model is in sight.
    """
    info = check_model(path)
    recorded = info.edge_polarity if info is not None and info.polarity_source == "metadata" else None
    polarity, note = choose_polarity(recorded, chosen, os.path.basename(path) if path else "the model")
    if note and path:
        tell_once(note)
    return polarity

"""The A1111 / Forge extension's library, imported by ``scripts/colorstroke.py``.

A1111 and Forge run every ``.py`` file directly inside ``scripts/`` as a script, each as a standalone
module, with the extension's root on ``sys.path`` only while that file loads (A1111; Forge keeps it).
Files in this sub-folder are never run by them; the entry script imports the folder as
``scripts.colorstroke_lib`` (``scripts`` is a namespace package shared with other extensions, as
sd-webui-controlnet uses it) and everything it needs at load time, since later imports would no
longer find the root on A1111.

``geometry``, ``hints``, ``store``, ``unit_model`` and ``generation`` are host-free; ``cn_glue``
(sd-webui-controlnet) and ``forge_glue`` (Forge's built-in ControlNet) import their host and are imported
only on it.

The extension uses two of the project's packages, ``preprocessors`` (the hint) and ``model`` (what a
checkpoint file is, in ``unit_model``), under their top-level names, which every extension shares on Forge.
This package checks both with ``import_own`` as it loads, refusing a same-named module of someone else;
its modules then import them plainly (``from model import ...``).
"""
from __future__ import annotations

import importlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_told = set()


def tell_once(message: str) -> None:
    """Print ``message`` to the console the first time it comes up in this process (UI reloads included)."""
    if message not in _told:
        _told.add(message)
        print(f"[Color Stroke] {message}")


def import_own(name: str):
    """Import the top-level package ``name`` and check that it is this extension's, not another's."""
    module = importlib.import_module(name)
    location = getattr(module, "__file__", None) or next(iter(getattr(module, "__path__", [])), "")
    if not Path(location).resolve().is_relative_to(ROOT / name):
        raise ImportError(
            f"the module `{name}` comes from {location}, not from this extension ({ROOT / name}): another "
            f"extension or installed package uses the top-level name `{name}` and was imported first"
        )
    return module


import_own("preprocessors")
import_own("model")

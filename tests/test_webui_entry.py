"""scripts/colorstroke.py loaded the way A1111 and Forge load it, with stand-ins for gradio and the webui.

Here no ControlNet is present (A1111 without sd-webui-controlnet): the section says so and nothing
breaks. ``test_webui_hosts.py`` loads it again beside the real ControlNet registries.
"""
from __future__ import annotations

import base64
import contextlib
import importlib.util
import io
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from scripts.colorstroke_lib.store import STROKES

ENTRY = Path(__file__).resolve().parents[1] / "scripts" / "colorstroke.py"
STANDINS = {
    "gradio/__init__.py": """
        created = []

        class Block:
            def __init__(self, *args, **kwargs):
                self.args, self.kwargs = args, kwargs
                self.value, self.label = kwargs.get("value"), kwargs.get("label")
                created.append(self)

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                return False

        class Accordion(Block): pass
        class HTML(Block): pass
        class Image(Block): pass
        class Markdown(Block): pass
        class Textbox(Block): pass
    """,
    "gradio/component_meta.py": "def create_or_modify_pyi(*args, **kwargs):\n    pass\n",
    "gradio/context.py": """
        class RootBlock:
            def load(self, *args, **kwargs):
                pass

        class Context:
            root_block = RootBlock()
    """,
    "modules/__init__.py": "",
    "modules/scripts.py": "class Script: pass\nAlwaysVisible = object()\n",
    "modules/script_callbacks.py": """
        unloaded = []

        def on_script_unloaded(callback, *, name=None):
            unloaded.append(callback)
    """,
}


def write_standins(folder: Path, files: dict = STANDINS) -> Path:
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return folder


@contextlib.contextmanager
def webui(folder: Path):
    """The stand-ins first on sys.path; afterwards their modules are forgotten."""
    sys.path.insert(0, str(folder))
    try:
        yield
    finally:
        sys.path.remove(str(folder))
        for name in [n for n in sys.modules if n.split(".")[0] in ("gradio", "modules")]:
            del sys.modules[name]


def load_entry():
    """As ``modules.script_loading.load_module``: a standalone module named after the file."""
    spec = importlib.util.spec_from_file_location(ENTRY.name, ENTRY)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def png_base64(layer: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(layer, "RGBA").save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


@pytest.fixture
def bare_webui(tmp_path):
    with webui(write_standins(tmp_path)):
        yield


def test_without_controlnet_the_section_says_so_once_and_stays_inert(bare_webui, capsys):
    entry = load_entry()
    load_entry()  # a UI reload
    assert entry.HOST is None and entry.glue is None
    console = capsys.readouterr().out
    assert console.count("sd-webui-controlnet is not installed") == 1
    import gradio
    import modules.script_callbacks

    script = entry.ColorStrokeScript()
    assert script.title() == "Color Stroke" and script.show(False) is entry.scripts.AlwaysVisible
    gradio.created.clear()
    controls = script.ui(is_img2img=False)
    assert [type(c).__name__ for c in controls] == ["Image"] and controls[0].kwargs["image_mode"] == "RGBA"
    shown = " ".join(str(b.args[0]) for b in gradio.created if type(b).__name__ == "Markdown")
    assert "sd-webui-controlnet is not installed" in shown
    layer = np.zeros((8, 8, 4), np.uint8)
    layer[2:4, 2:4] = 255
    script.before_process(object(), png_base64(layer))
    assert STROKES.get() is None, "nothing is stored when there is no ControlNet to use it"
    script.postprocess(object(), None, png_base64(layer))
    assert modules.script_callbacks.unloaded == []

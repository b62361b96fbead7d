"""scripts/colorstroke.py loaded the way A1111 and Forge load it, with stand-ins for gradio and the webui.

Here no ControlNet is present (A1111 without sd-webui-controlnet): the section says so and nothing
breaks. ``test_webui_hosts.py`` loads it again beside the real ControlNet registries.
"""
from __future__ import annotations

import numpy as np
import pytest

from scripts.colorstroke_lib.generation import GENERATION, UnitRequest
from scripts.colorstroke_lib.store import STROKES
from tests.helpers import load_entry, png_base64, processing, webui, write_standins


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


class StandInGlue:
    """The glue of a host with a ControlNet: the units it reads from ``p.units``; ``refused`` maps a unit's
    model name to the HintError message its check raises; ``bases``: the sampled checkpoint each check was given."""

    def __init__(self):
        self.refused, self.bases = {}, []

    def before_generation(self, p):
        pass

    def units(self, p):
        return p.units

    def check(self, unit, base):
        from preprocessors import HintError

        self.bases.append(base)
        if unit.model in self.refused:
            raise HintError(self.refused[unit.model])


@pytest.fixture
def entry_with_controlnet(bare_webui, monkeypatch):
    """The entry as on a host with a ControlNet, whose units each test gives in ``p.units``."""
    from scripts import colorstroke_lib

    entry = load_entry()
    monkeypatch.setattr(entry, "glue", StandInGlue())
    colorstroke_lib._told.clear()
    yield entry
    STROKES.clear()
    GENERATION.start(())


OUR_UNIT = UnitRequest(0, "colorstroke_canny", "control_colorstroke_sd15 [deadbeef]")


def test_the_section_says_how_an_uploaded_layer_is_read(entry_with_controlnet):
    import gradio

    gradio.created.clear()
    upload, fill, fill_gap = entry_with_controlnet.ColorStrokeScript().ui(is_img2img=True)
    assert (type(fill).__name__, fill.value, type(fill_gap).__name__, fill_gap.value) == ("Checkbox", True, "Slider", 0)
    assert fill_gap.kwargs["maximum"] == 64 and fill.kwargs["elem_id"] == "img2img_colorstroke_fill"
    (describe, inputs, outputs), = upload.listeners
    assert inputs == [upload] and type(outputs[0]).__name__ == "Markdown"
    flat = np.full((16, 16, 4), 255, np.uint8)  # gradio's RGBA of an RGB upload: strokes on white
    flat[4:8, 4:8, :3] = (200, 40, 40)
    assert "plain background (#ffffff) counts as no stroke" in describe(flat)


def test_an_rgb_png_on_a_plain_background_gives_its_strokes(entry_with_controlnet, capsys):
    script, p = entry_with_controlnet.ColorStrokeScript(), processing(OUR_UNIT)
    flat = np.full((16, 16, 3), 255, np.uint8)
    flat[4:8, 4:8] = (200, 40, 40)
    script.before_process(p, png_base64(flat))
    assert STROKES.get().layer[..., 3].sum() == 16 and STROKES.get().layer[5, 5, 3] == 1.0
    GENERATION.deliver(object())  # ControlNet got the unit's hint
    p.init(["prompt"], [1], [1])
    assert p.inits == [["prompt"]], "the generation goes on"
    note = "plain background #ffffff counted as no stroke"
    assert note in capsys.readouterr().out and note in p.extra_generation_params["Color Stroke"]


def test_each_unit_is_checked_against_the_checkpoint_being_sampled(entry_with_controlnet):
    """Before the generation each model is checked against its own family; when sampling starts (``p.init``, after
    an API call's override_settings loaded its checkpoint), against the checkpoint then loaded."""
    from preprocessors import HintError

    glue = entry_with_controlnet.glue
    script, p = entry_with_controlnet.ColorStrokeScript(), processing(OUR_UNIT, OUR_UNIT)
    p.sd_model = None  # the override's checkpoint is not loaded yet
    script.before_process(p, None)
    assert glue.bases == [None, None]
    p.sd_model = type("Model", (), {"is_sdxl": True, "sd_checkpoint_info": type("Info", (), {"name": "pony.ckpt"})})()
    glue.refused = {}
    GENERATION.deliver(object())
    GENERATION.deliver(object())
    p.init(["prompt"], [1], [1])
    assert glue.bases[2:] == [("sdxl", "pony.ckpt")] * 2 and p.inits == [["prompt"]]
    script.before_process(p, None)
    glue.refused = {OUR_UNIT.model: "is an SD 1.5 ControlNet, but the checkpoint 'pony.ckpt' is SDXL"}
    with pytest.raises(HintError, match="^Color Stroke: is an SD 1.5 ControlNet, but the checkpoint 'pony.ckpt'"):
        p.init(["prompt"], [1], [1])


def test_the_sections_fill_options_reach_the_store(entry_with_controlnet):
    script, p = entry_with_controlnet.ColorStrokeScript(), processing(OUR_UNIT)
    layer = np.zeros((16, 16, 4), np.uint8)
    layer[4:8, 4:8] = (200, 40, 40, 255)
    script.before_process(p, png_base64(layer), False, 9)
    assert (STROKES.fill, STROKES.fill_gap, STROKES.filled) == (False, 9, False)
    script.postprocess(p, None)
    script.before_process(processing(OUR_UNIT), png_base64(layer))  # an API call of the layer alone
    assert (STROKES.fill, STROKES.fill_gap, STROKES.filled) == (True, 0, True)


def test_fill_options_out_of_order_stop_the_generation_naming_the_args(entry_with_controlnet, capsys):
    from preprocessors import HintError

    script, p = entry_with_controlnet.ColorStrokeScript(), processing(OUR_UNIT)
    canvas = png_base64(np.zeros((8, 8, 4), np.uint8))
    script.before_process(p, None, canvas)  # an API call that gives Forge's canvas layer where the fill goes
    with pytest.raises(HintError, match=r"^Color Stroke: the section's args are \[stroke layer, fill"):
        p.init(["prompt"], [1], [1])
    assert p.inits == [] and STROKES.get() is None


def test_a_unit_that_cannot_give_the_control_stops_the_generation(entry_with_controlnet, capsys):
    from preprocessors import HintError

    entry_with_controlnet.glue.refused[OUR_UNIT.model] = "ControlNet Unit 0 (colorstroke_canny): a 3-channel model"
    script, p = entry_with_controlnet.ColorStrokeScript(), processing(UnitRequest(1, "canny", "x"), OUR_UNIT)
    script.before_process(p, None)
    assert "a 3-channel model" in capsys.readouterr().out, "said at once in the console"
    with pytest.raises(HintError, match="^Color Stroke: ControlNet Unit 0 .*a 3-channel model"):
        p.init(["prompt"], [1], [1])
    assert p.inits == []


def test_a_unit_whose_hint_never_reached_controlnet_stops_the_generation(entry_with_controlnet):
    from preprocessors import HintError

    script, p = entry_with_controlnet.ColorStrokeScript(), processing(OUR_UNIT, UnitRequest(1, "canny", "x"))
    script.before_process(p, None)
    # ControlNet's process ran and failed inside the host's try/except: nothing was delivered
    with pytest.raises(HintError, match="ControlNet did not apply the Color Stroke hint .0 of 1.*ControlNet Unit 0"):
        p.init(["prompt"], [1], [1])
    assert p.inits == []
    p = processing(UnitRequest(0, "canny", "x"))  # no Color Stroke unit: nothing to check
    script.before_process(p, None)
    p.init(["prompt"], [1], [1])
    assert p.inits == [["prompt"]] and p.extra_generation_params == {}


def test_strokes_that_no_unit_uses_are_noted_beside_the_image(entry_with_controlnet):
    script, p = entry_with_controlnet.ColorStrokeScript(), processing(UnitRequest(0, "canny", "x"))
    layer = np.zeros((8, 8, 4), np.uint8)
    layer[2:4, 2:4] = 255
    script.before_process(p, png_base64(layer))
    p.init(["prompt"], [1], [1])
    assert p.inits == [["prompt"]]
    assert "no ControlNet unit uses the preprocessor colorstroke_canny" in p.extra_generation_params["Color Stroke"]


def test_an_unusable_layer_stops_the_generation_with_the_reason(entry_with_controlnet, capsys):
    from preprocessors import HintError

    script, p = entry_with_controlnet.ColorStrokeScript(), processing(OUR_UNIT)
    photo = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    script.before_process(p, png_base64(photo))
    assert STROKES.get() is None
    assert "no transparent pixels and no plain background" in capsys.readouterr().out
    with pytest.raises(HintError, match="^Color Stroke: the stroke layer has no transparent pixels"):
        p.init(["prompt"], [1], [1])
    assert p.inits == []
    p = processing(OUR_UNIT)
    script.before_process(p, None)  # no layer given: generating without strokes is what was asked
    GENERATION.deliver(object())
    p.init(["prompt"], [1], [1])
    assert p.inits == [["prompt"]] and STROKES.get() is None

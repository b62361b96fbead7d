"""The A1111/Forge glue against real host checkouts, with the smallest stand-ins for the webui's ``modules``.

Run when the checkouts are given (they need torch, einops, OpenCV; sd-webui-controlnet needs pydantic's
v1 API, Forge needs transformers and psutil):

    SD_WEBUI_CONTROLNET_DIR=... FORGE_DIR=... python -m pytest tests/test_webui_hosts.py

What is real: sd-webui-controlnet's ``Preprocessor`` registry, ``global_state`` model filter and
``Script.detectmap_proc`` (compiled from its source: ``scripts/controlnet.py`` itself imports the
whole webui); Forge's preprocessor registry, ``global_state``, ``crop_and_resize_image``,
``judge_image_type`` and ``numpy_to_pytorch``. The generation steps that call them are replayed in
the hosts' order (sd-webui-controlnet ``get_control``, Forge ``process_unit_after_click_generate`` and
``process_unit_before_every_sampling``).
"""
from __future__ import annotations

import ast
import contextlib
import importlib
import os
import sys
import textwrap
import types
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from preprocessors import (
    BLACK_ON_WHITE,
    WHITE_ON_BLACK,
    HintError,
    StrokeMisread,
    read_stroke_layer,
    strokes_removed,
    to_model_polarity,
)

MODEL_LESS = BLACK_ON_WHITE  # the polarity without a model file in sight: as for a file that records none
from scripts.colorstroke_lib import generation, geometry, hints, unit_model
from scripts.colorstroke_lib.store import STROKES
from tests.helpers import STANDINS as ENTRY_STANDINS
from tests.helpers import load_entry, png_base64, processing

CN_DIR = os.environ.get("SD_WEBUI_CONTROLNET_DIR")
FORGE_DIR = os.environ.get("FORGE_DIR")
HOST_PACKAGES = {"modules", "internal_controlnet", "annotator", "lib_controlnet", "modules_forge", "backend", "scripts",
                 "gradio"}
OUR_MODULES = ("scripts.colorstroke_lib", "scripts.colorstroke_lib.geometry", "scripts.colorstroke_lib.hints",
               "scripts.colorstroke_lib.store", "scripts.colorstroke_lib.unit_model",
               "scripts.colorstroke_lib.generation")
MODEL_NAME = "control_colorstroke_sd15 [deadbeef]"
# (drawing height, width) -> generation (h, w) and hires (h, w), as get_target_dimensions gives them
SIZES = [((480, 640), (512, 512), (1024, 1024)), ((600, 400), (512, 768), (768, 1152)),
         ((512, 512), (384, 640), (768, 1280))]
pytestmark = pytest.mark.host

COMMON_STANDINS = {
    "modules/__init__.py": "",
    "modules/shared.py": """
        import types
        cmd_opts = types.SimpleNamespace(controlnet_preprocessor_cache_size=16, controlnet_loglevel="INFO",
                                         controlnet_dir=None)
        opts = types.SimpleNamespace(data={}, forge_canvas_plain=False, forge_canvas_toolbar_always=False)
    """,
    "modules/modelloader.py": """
        def load_file_from_url(*args, **kwargs):
            raise RuntimeError("the tests download nothing")
    """,
    "modules/sd_models.py": "def model_hash(filename):\n    return 'deadbeef'\n",
    "modules/processing.py": """
        class StableDiffusionProcessing: pass
        class StableDiffusionProcessingTxt2Img(StableDiffusionProcessing): pass
        class StableDiffusionProcessingImg2Img(StableDiffusionProcessing): pass
    """,
    "modules/api/__init__.py": "",
    "modules/api/api.py": "def decode_base64_to_image(encoding):\n    raise NotImplementedError\n",
}
CN_STANDINS = {
    "modules/devices.py": """
        import torch
        device = torch.device("cpu")
        dtype_unet = torch.float32
        def get_device_for(task):
            return device
    """,
    "modules/safe.py": "import torch\nunsafe_torch_load = torch.load\n",
    "modules/scripts.py": """
        import collections
        import os
        class Script: pass
        class ScriptRunner: pass
        AlwaysVisible = object()
        def basedir():
            return os.environ["SD_WEBUI_CONTROLNET_DIR"]
        # what load_scripts registered: sd-webui-controlnet's script loaded (a test empties it to fail it)
        ScriptClassData = collections.namedtuple("ScriptClassData", ["script_class", "path", "basedir", "module"])
        scripts_data = [ScriptClassData(Script, os.path.join(basedir(), "scripts", "controlnet.py"), basedir(), None)]
    """,
    "modules/paths.py": "import os\nmodels_path = os.path.join(os.path.dirname(__file__), os.pardir, 'models')\n",
}
FORGE_STANDINS = {
    "modules/paths_internal.py": """
        import os
        models_path = os.path.join(os.path.dirname(__file__), os.pardir, "models")
        default_output_dir = os.path.join(os.path.dirname(__file__), os.pardir, "outputs")
    """,
}


def write_standins(folder: Path, files: dict) -> str:
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return str(folder)


@contextlib.contextmanager
def host_imports(paths, argv=()):
    """Put a host's folders first on sys.path; afterwards forget every host module imported meanwhile.

    Our library's host-free modules are kept, so the store and polarity the tests use stay the same.
    """
    saved_path, saved_argv, before = list(sys.path), list(sys.argv), set(sys.modules)
    sys.path[:0] = [str(p) for p in paths]
    sys.argv[1:] = list(argv)
    try:
        yield
    finally:
        sys.path[:], sys.argv[:] = saved_path, saved_argv
        for name in set(sys.modules) - before:
            if name.split(".")[0] in HOST_PACKAGES and name not in OUR_MODULES:
                del sys.modules[name]


@contextlib.contextmanager
def without_extension_on_sys_path():
    """As A1111 after loading our script: the repo root is no longer on sys.path (imports done stay)."""
    root = Path(__file__).resolve().parents[1]
    saved = list(sys.path)
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != root]
    try:
        yield
    finally:
        sys.path[:] = saved


@contextlib.contextmanager
def pydantic_v1():
    """sd-webui-controlnet's ``internal_controlnet.args`` is written for pydantic 1 (as A1111 pins it)."""
    import pydantic
    import pydantic.v1

    sys.modules["pydantic"] = pydantic.v1
    try:
        yield
    finally:
        sys.modules["pydantic"] = pydantic


def drawing(height, width):
    """A line drawing (dark lines on white), HxWx3 uint8, with shapes away from the border."""
    image = np.full((height, width, 3), 255, np.uint8)
    cv2.rectangle(image, (width // 5, height // 5), (width * 3 // 5, height * 3 // 5), (0, 0, 0), 2)
    cv2.circle(image, (width * 2 // 3, height * 2 // 3), min(height, width) // 6, (0, 0, 0), 2)
    cv2.line(image, (width // 10, height * 9 // 10), (width * 9 // 10, height // 10), (0, 0, 0), 1)
    return image


def strokes(height, width):
    """A transparent stroke layer (HxWx4 uint8) with two coloured blobs, at another size than the drawing."""
    layer = np.zeros((height, width, 4), np.uint8)
    cv2.circle(layer, (width // 3, height // 3), max(2, min(height, width) // 10), (230, 40, 30, 255), -1)
    cv2.circle(layer, (width * 2 // 3, height * 2 // 3), max(2, min(height, width) // 12), (20, 60, 220, 255), -1)
    return layer


def placed_alike(host_edges: np.ndarray, our_edges: np.ndarray) -> float:
    """Share of the host's edge pixels (HxW, 1 = edge) within 2 pixels of ours.

    One way only: the host thins resized binary maps and drops some one-pixel diagonals, while the
    contract's resize keeps every line, so ours has edges the host lost, never the other way round.
    """
    near_ours = cv2.dilate((our_edges > 0.5).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    theirs = host_edges > 0.5
    return float((theirs & near_ours).sum() / max(theirs.sum(), 1))


def checkpoint_file(folder, recorded, hint_channels=5, name="control_colorstroke_sd15.safetensors", fill=None):
    """A header-only stand-in of a Color Stroke ControlNet file that records ``recorded`` edge polarity
    (None: no metadata, as the original colour-stroke model) and the training's ``fill`` (None: none); with
    hint_channels=3, a standard one."""
    from safetensors.numpy import save_file

    from model.metadata import encode

    path = folder / name
    save_file({"controlnet_cond_embedding.conv_in.weight": np.zeros((16, hint_channels, 3, 3), np.float16),
               "down_blocks.1.attentions.0.transformer_blocks.0.attn2.to_k.weight": np.zeros((640, 768), np.float16)},
              str(path), metadata=encode({"edge_polarity": recorded, "fill": fill}) or None)
    unit_model._inspect.cache_clear()
    return str(path)


def photo_png():
    """An API call's stroke layer that cannot say where the strokes are: an RGB picture, no plain background."""
    return png_base64(np.random.default_rng(0).integers(0, 256, (24, 24, 3), dtype=np.uint8))


# ---------------------------------------------------------------- sd-webui-controlnet

def real_detectmap_proc(cn_dir: str, devices):
    """sd-webui-controlnet's ``Script.detectmap_proc`` and ``get_pytorch_control``, compiled from its source
    with the helpers its module imports, on a class standing in for its Script."""
    from annotator.util import HWC3
    from einops import rearrange
    from scripts.enums import ResizeMode
    from scripts.lvminthin import lvmin_thin, nake_nms
    from scripts.utils import get_unique_axis0

    path = Path(cn_dir, "scripts", "controlnet.py")
    tree = ast.parse(path.read_text())
    get_pytorch_control = next(n for n in tree.body if isinstance(n, ast.FunctionDef)
                               and n.name == "get_pytorch_control")
    script = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Script")
    detectmap_proc = next(n for n in script.body if isinstance(n, ast.FunctionDef) and n.name == "detectmap_proc")
    detectmap_proc.decorator_list = []
    namespace = dict(np=np, cv2=cv2, torch=torch, rearrange=rearrange, HWC3=HWC3, ResizeMode=ResizeMode,
                     get_unique_axis0=get_unique_axis0, lvmin_thin=lvmin_thin, nake_nms=nake_nms, devices=devices)
    exec(compile(ast.Module(body=[get_pytorch_control, detectmap_proc], type_ignores=[]), str(path), "exec"), namespace)
    return type("Script", (),
                {"detectmap_proc": staticmethod(namespace["detectmap_proc"]), "title": lambda self: "ControlNet"})


@pytest.fixture(scope="class")
def cn(tmp_path_factory):
    if not CN_DIR:
        pytest.skip("set SD_WEBUI_CONTROLNET_DIR to a sd-webui-controlnet checkout")
    standins = write_standins(tmp_path_factory.mktemp("cn_webui"), {**ENTRY_STANDINS, **COMMON_STANDINS, **CN_STANDINS})
    with host_imports([standins, CN_DIR]):
        with pydantic_v1():
            external_code = importlib.import_module("internal_controlnet.external_code")
        # the registry's built-ins without scripts/preprocessor/__init__.py, which loads every annotator
        package = types.ModuleType("scripts.preprocessor")
        package.__path__ = [str(Path(CN_DIR, "scripts", "preprocessor"))]
        sys.modules["scripts.preprocessor"] = package
        importlib.import_module("scripts.preprocessor.model_free_preprocessors")
        from modules import devices

        yield types.SimpleNamespace(
            external_code=external_code,
            Preprocessor=external_code.Preprocessor,
            ResizeMode=external_code.ResizeMode,
            global_state=importlib.import_module("scripts.global_state"),
            glue=importlib.import_module("scripts.colorstroke_lib.cn_glue"),
            Script=real_detectmap_proc(CN_DIR, devices),
        )
    STROKES.clear()


class TestSdWebuiControlnet:
    """A1111's sd-webui-controlnet: registry, model filter, detectmap_proc."""

    def test_cn_registers_our_preprocessors_even_twice(self, cn):
        cn.glue.register()
        cn.glue.register()  # a UI reload: no "already registered" assert
        for name in hints.PREPROCESSORS:
            preprocessor = cn.Preprocessor.get_preprocessor(name)
            assert isinstance(preprocessor, cn.glue.ColorStrokeCanny) and preprocessor.returns_image
            assert cn.external_code.ControlNetUnit(enabled=True, module=name, model=MODEL_NAME).module == name
        assert "ColorStroke" in cn.Preprocessor.get_all_preprocessor_tags()

    def test_cn_model_filter_lists_the_filename_convention(self, cn, tmp_path):
        models = {"None": None, MODEL_NAME: str(tmp_path / "a"),
                  "control_v11p_sd15_canny [12345678]": str(tmp_path / "b")}
        preprocessors, filtered, default_preprocessor, default_model = cn.global_state.select_control_type(
            "ColorStroke", cn_models=models)
        assert filtered == ["None", MODEL_NAME] and default_model == MODEL_NAME
        assert set(hints.PREPROCESSORS) <= set(preprocessors)
        assert default_preprocessor == "colorstroke_canny", "the Control Type preselects the polarity-neutral one"
        assert cn.Preprocessor.get_default_preprocessor("ColorStroke").label == "colorstroke_canny"
        assert MODEL_NAME not in cn.global_state.select_control_type("Canny", cn_models=models)[1]

    def test_cn_preprocessor_is_never_cached(self, cn):
        cn.glue.register()
        preprocessor = cn.Preprocessor.get_preprocessor("colorstroke_canny")
        image = drawing(96, 128)
        STROKES.set(strokes(48, 64))
        with_strokes = preprocessor.cached_call(image, resolution=512, slider_1=100, slider_2=200, low_vram=False,
                                                model="None")
        STROKES.clear()
        without = preprocessor.cached_call(image, resolution=512, slider_1=100, slider_2=200, low_vram=False,
                                           model="None")
        assert with_strokes.value.hint[4].max() == 1.0 and without.value.hint[4].max() == 0.0
        preview = with_strokes.display_images[0]
        assert preview.shape == (96, 128, 3) and preview.dtype == np.uint8
        np.testing.assert_array_equal(preview, without.display_images[0])

    @pytest.mark.parametrize("mode", ["Just Resize", "Crop and Resize", "Resize and Fill"])
    @pytest.mark.parametrize("source, size, hires", SIZES)
    def test_cn_generation_gets_a_5_channel_control_at_both_sizes(self, cn, mode, source, size, hires):
        """get_control: cached_call, then detectmap_proc for hires and for the generation size."""
        cn.glue.register()
        cn.glue.install_wrapper(cn.Script)
        resize_mode = cn.ResizeMode(mode)
        preprocessor = cn.Preprocessor.get_preprocessor("colorstroke_canny")
        image = drawing(*source)
        STROKES.set(strokes(source[0] // 2, source[1] // 2))
        result = preprocessor.cached_call(image, resolution=512, slider_1=100, slider_2=200, low_vram=False,
                                          model="None")
        STROKES.clear()
        canny_map = result.display_images[0]
        for h, w in (hires, size):
            control, detected_map = cn.Script.detectmap_proc(result.value, "colorstroke_canny", resize_mode, h, w)
            assert control.shape == (1, 5, h, w) and control.dtype == torch.float32
            assert 0.0 <= control.min() and control.max() <= 1.0 and control[0, 4].max() > 0.9
            assert result.value.model_polarity == MODEL_LESS
            expected = to_model_polarity(geometry.fit_hint(result.value.hint, resize_mode, h, w), MODEL_LESS)
            np.testing.assert_array_equal(control[0].numpy(), expected)
            assert detected_map.shape == (h, w, 3) and detected_map.dtype == np.uint8
            # the host places its own Canny map (3 channels: the original path) the same way
            _, host_map = cn.Script.detectmap_proc(canny_map, "canny", resize_mode, h, w)
            assert placed_alike(host_map[..., 0] / 255.0, 1.0 - control[0, 0].numpy()) > 0.97
        cn.glue.remove_wrappers()

    @pytest.mark.parametrize("mode", ["Just Resize", "Crop and Resize", "Resize and Fill"])
    def test_cn_other_maps_take_the_original_path_untouched(self, cn, mode):
        resize_mode = cn.ResizeMode(mode)
        original = cn.Script.__dict__["detectmap_proc"].__func__
        calls = []

        def spy(*args):
            calls.append(args)
            return original(*args)

        cn.Script.detectmap_proc = staticmethod(spy)
        try:
            cn.glue.install_wrapper(cn.Script)
            cn.glue.install_wrapper(cn.Script)  # idempotent
            rng = np.random.default_rng(0)
            maps = [("canny", (rng.random((300, 200)) > 0.97).astype(np.uint8) * 255),
                    ("depth", rng.integers(0, 256, (300, 200, 3), dtype=np.uint8)),
                    ("inpaint_only", rng.integers(0, 256, (300, 200, 4), dtype=np.uint8))]
            for module, detected_map in maps:
                for h, w in ((512, 512), (768, 1152)):
                    wrapped = cn.Script.detectmap_proc(detected_map, module, resize_mode, h, w)
                    direct = original(detected_map, module, resize_mode, h, w)
                    assert calls[-1][0] is detected_map and calls[-1][1:] == (module, resize_mode, h, w)
                    torch.testing.assert_close(wrapped[0], direct[0], rtol=0, atol=0)
                    np.testing.assert_array_equal(wrapped[1], direct[1])
            assert len(calls) == 6
        finally:
            cn.glue.remove_wrappers()
            assert cn.Script.__dict__["detectmap_proc"].__func__ is spy, "removing restores what was there"
            cn.Script.detectmap_proc = staticmethod(original)

    def test_cn_polarity_comes_from_the_model_when_it_records_one(self, cn, tmp_path, monkeypatch):
        cn.glue.register()
        monkeypatch.setitem(cn.global_state.cn_models, MODEL_NAME, checkpoint_file(tmp_path, BLACK_ON_WHITE))
        for name in hints.PREPROCESSORS:
            result = cn.Preprocessor.get_preprocessor(name).cached_call(
                drawing(64, 64), resolution=512, slider_1=100, slider_2=200, model=MODEL_NAME)
            assert result.value.model_polarity == BLACK_ON_WHITE and result.value.hint[0].mean() < 0.5
            control, preview = cn.glue.hint_control(result.value, cn.ResizeMode.INNER_FIT, 64, 64)
            assert control[0, 0].mean() > 0.5, "the model gets black-on-white edges: mostly 1"
            assert preview.mean() < 128, "the preview shows light lines on dark, whatever the model's polarity"

    def test_cn_model_without_polarity_is_black_on_white_unless_chosen(self, cn, tmp_path, monkeypatch):
        cn.glue.register()
        monkeypatch.setitem(cn.global_state.cn_models, MODEL_NAME, checkpoint_file(tmp_path, None))
        expected = {"colorstroke_canny": BLACK_ON_WHITE, "colorstroke_canny_white_on_black": WHITE_ON_BLACK}
        for name, edge_polarity in expected.items():
            result = cn.Preprocessor.get_preprocessor(name).cached_call(drawing(64, 64), resolution=512,
                                                                        model=MODEL_NAME)
            assert result.value.model_polarity == edge_polarity

    def test_cn_sliders_start_at_1(self, cn):
        cn.glue.register()
        for name in hints.PREPROCESSORS:
            preprocessor = cn.Preprocessor.get_preprocessor(name)
            assert preprocessor.slider_1.minimum == preprocessor.slider_2.minimum == 1

    def test_cn_entry_stores_strokes_and_wraps_for_each_generation(self, cn, tmp_path, monkeypatch):
        import modules.script_callbacks

        entry = load_entry()
        assert entry.HOST == entry.SD_WEBUI_CONTROLNET and entry.problem is None
        assert isinstance(cn.Preprocessor.get_preprocessor("colorstroke_canny"), cn.glue.ColorStrokeCanny)
        script = entry.ColorStrokeScript()
        assert [type(c).__name__ for c in script.ui(is_img2img=True)] == ["Image", "Checkbox", "Slider"]
        monkeypatch.setitem(cn.global_state.cn_models, MODEL_NAME, checkpoint_file(tmp_path, BLACK_ON_WHITE))
        layer = strokes(32, 32)
        p = cn_processing(cn, {"enabled": True, "module": "colorstroke_canny", "model": MODEL_NAME})
        with without_extension_on_sys_path():  # A1111 takes the extension's folder off sys.path after loading
            script.before_process(p, png_base64(layer))  # as an API call's alwayson_scripts args
            np.testing.assert_array_equal(STROKES.get().picture, layer)
            assert hasattr(cn.Script.__dict__["detectmap_proc"].__func__, "_colorstroke_original")
            result = cn.Preprocessor.get_preprocessor("colorstroke_canny").cached_call(
                drawing(64, 64), resolution=512, slider_1=100, slider_2=200, model=MODEL_NAME)
            control, _ = cn.Script.detectmap_proc(result.value, "colorstroke_canny", cn.ResizeMode.INNER_FIT, 64, 64)
            assert control[0, 4].max() == 1.0 and result.value.model_polarity == BLACK_ON_WHITE
            assert control[0, 0].mean() > 0.5, "black-on-white edges reach the model"
            p.init(["prompt"], [1], [1])
            assert p.inits == [["prompt"]], "the unit's hint reached ControlNet: the generation goes on"
            assert "stretched to the drawing's aspect" not in p.extra_generation_params.get("Color Stroke", "")
            script.postprocess(p, None, png_base64(layer))
        assert STROKES.get() is None
        for callback in modules.script_callbacks.unloaded:  # the UI reloads
            callback()
        assert not hasattr(cn.Script.__dict__["detectmap_proc"].__func__, "_colorstroke_original")


    def test_cn_a_unit_that_cannot_give_color_stroke_control_stops_the_generation(self, cn, tmp_path, monkeypatch):
        """API units, read field by field with sd-webui-controlnet's ControlNetUnit defaults: each failure is said."""
        from preprocessors import HintError

        script = load_entry().ColorStrokeScript()
        monkeypatch.setitem(cn.global_state.cn_models, "control_v11p_sd15_canny [12345678]",
                            checkpoint_file(tmp_path, None, 3, "control_v11p_sd15_canny.safetensors"))
        monkeypatch.setitem(cn.global_state.cn_models, MODEL_NAME, checkpoint_file(tmp_path, None))
        cases = [
            ({"module": "colorstroke_canny", "model": "control_v11p_sd15_canny [12345678]"},
             r": control_v11p_sd15_canny.safetensors: this is a 3-channel.*own preprocessor \(such as canny\)"),
            ({"module": "colorstroke_canny", "model": "None"}, r" has no model"),
            ({"module": "colorstroke_canny", "model": "nothing_like_it"},
             r": no ControlNet model is named 'nothing_like_it'"),
            ({"module": "canny", "model": MODEL_NAME}, r": .* is a Color Stroke ControlNet.*pick that preprocessor"),
        ]
        for unit, message in cases:
            p = cn_processing(cn, {"enabled": False, "module": "none", "model": "None"}, {"enabled": True, **unit})
            script.before_process(p, None)
            with pytest.raises(HintError, match=rf"^Color Stroke: ControlNet Unit 1 \({unit['module']}\){message}"):
                p.init(["prompt"], [1], [1])
            assert p.inits == []
        p = cn_processing(cn, {"enabled": True, "module": "colorstroke_canny", "model": MODEL_NAME})
        script.before_process(p, None)
        # ControlNet's process failed inside the host's try/except: no hint reached detectmap_proc
        with pytest.raises(HintError, match="ControlNet did not apply the Color Stroke hint"):
            p.init(["prompt"], [1], [1])
        script.postprocess(p, None, None)

    def test_cn_units_are_read_without_decoding_their_images(self, cn, monkeypatch):
        """sd-webui-controlnet decodes an API unit's images as it builds its ControlNetUnit; our check reads only
        the fields it needs, so the images are decoded once, by ControlNet itself."""
        decoded = []
        monkeypatch.setattr(cn.external_code.ControlNetUnit, "cls_decode_base64",
                            staticmethod(lambda text: decoded.append(text) or np.zeros((8, 8, 3), np.uint8)))
        api_unit = {"enabled": True, "module": "colorstroke_canny", "model": MODEL_NAME,
                    "image": png_base64(drawing(8, 8)), "effective_region_mask": png_base64(drawing(8, 8))}
        p = cn_processing(cn, {"enabled": False, "module": "none", "model": "None"}, api_unit, {"module": "canny"})
        ours = generation.UnitRequest(1, "colorstroke_canny", MODEL_NAME)
        assert cn.glue.units(p) == [ours], "the third unit is off: enabled is False unless said"
        assert decoded == []
        cn.external_code.get_all_units_in_processing(p)  # what ControlNet reads: it decodes
        assert len(decoded) == 1

    def test_cn_a_layer_refused_at_the_units_hint_stops_the_generation_with_the_reason(self, cn, tmp_path,
                                                                                       monkeypatch):
        script = load_entry().ColorStrokeScript()
        monkeypatch.setitem(cn.global_state.cn_models, MODEL_NAME, checkpoint_file(tmp_path, None))
        p = cn_processing(cn, {"enabled": True, "module": "colorstroke_canny", "model": MODEL_NAME})
        image = drawing(64, 64)
        script.before_process(p, png_base64(image))  # the drawing itself uploaded as the stroke layer
        with pytest.raises(StrokeMisread, match="the line drawing itself"):  # the host's try/except only prints it
            cn.Preprocessor.get_preprocessor("colorstroke_canny").cached_call(
                image, resolution=512, slider_1=100, slider_2=200, model=MODEL_NAME)
        with pytest.raises(HintError, match="^Color Stroke: the stroke layer is the line drawing itself"):
            p.init(["prompt"], [1], [1])
        assert p.inits == []
        script.postprocess(p, None, None)

    def test_cn_a_stretched_layer_is_said_beside_the_image(self, cn, tmp_path, monkeypatch):
        script = load_entry().ColorStrokeScript()
        monkeypatch.setitem(cn.global_state.cn_models, MODEL_NAME, checkpoint_file(tmp_path, None))
        p = cn_processing(cn, {"enabled": True, "module": "colorstroke_canny", "model": MODEL_NAME})
        script.before_process(p, png_base64(strokes(40, 40)))
        result = cn.Preprocessor.get_preprocessor("colorstroke_canny").cached_call(
            drawing(48, 96), resolution=512, slider_1=100, slider_2=200, model=MODEL_NAME)
        cn.Script.detectmap_proc(result.value, "colorstroke_canny", cn.ResizeMode.INNER_FIT, 64, 128)
        p.init(["prompt"], [1], [1])
        assert "the stroke layer is 40x40 and the drawing 96x48: the strokes were stretched" in (
            p.extra_generation_params["Color Stroke"])
        script.postprocess(p, None, None)
        cn.glue.remove_wrappers()

    @pytest.mark.parametrize("fill, trained, note", [
        (True, None, "was trained without filled strokes"), (False, None, None),
        (True, {"probability": 0.5, "gap": 6, "alpha": 0.5}, None), (False, {"probability": 0.5}, "turn fill on"),
    ])
    def test_cn_the_sections_fill_reaches_the_hint_and_a_mismatch_is_noted(self, cn, tmp_path, monkeypatch, fill,
                                                                          trained, note):
        script = load_entry().ColorStrokeScript()
        monkeypatch.setitem(cn.global_state.cn_models, MODEL_NAME, checkpoint_file(tmp_path, None, fill=trained))
        p = cn_processing(cn, {"enabled": True, "module": "colorstroke_canny", "model": MODEL_NAME})
        image, layer = drawing(64, 64), strokes(64, 64)
        script.before_process(p, png_base64(layer), fill, 3)  # as the UI or an API call gives the section's args
        result = cn.Preprocessor.get_preprocessor("colorstroke_canny").cached_call(
            image, resolution=512, slider_1=100, slider_2=200, model=MODEL_NAME)
        control, _ = cn.Script.detectmap_proc(result.value, "colorstroke_canny", cn.ResizeMode.RESIZE, 64, 64)
        expected = hints.build_hint(hints.Drawing(image), read_stroke_layer(layer), fill, 3)
        np.testing.assert_array_equal(result.value.hint, expected)
        assert bool((control[0, 4] == 0.5).any()) is fill, "filled pixels (alpha 0.5) only with fill on"
        p.init(["prompt"], [1], [1])
        infotext = p.extra_generation_params.get("Color Stroke", "")
        assert (note in infotext) if note else "fill" not in infotext
        script.postprocess(p, None, None)
        cn.glue.remove_wrappers()

    def test_cn_a_controlnet_script_that_failed_to_load_is_said_and_offers_nothing(self, cn, monkeypatch):
        import gradio
        import modules.scripts

        monkeypatch.setattr(modules.scripts, "scripts_data", [])
        for name in hints.PREPROCESSORS:
            cn.Preprocessor.all_processors.pop(name, None)
            cn.Preprocessor.all_processors_by_name.pop(name, None)
        entry = load_entry()
        assert entry.glue is None and entry.problem == entry.CONTROLNET_FAILED
        assert all(cn.Preprocessor.get_preprocessor(name) is None for name in hints.PREPROCESSORS), "not in the API"
        gradio.created.clear()
        entry.ColorStrokeScript().ui(is_img2img=False)
        shown = " ".join(str(b.args[0]) for b in gradio.created if type(b).__name__ == "Markdown")
        assert "its script did not load" in shown


def cn_processing(cn, *units):
    """A generation as A1111 makes it for an API call: its runner holds sd-webui-controlnet's script, whose
    arguments are the units given (dicts, as alwayson_scripts sends them)."""
    controlnet = cn.Script()
    p = processing()
    controlnet.args_from, controlnet.args_to = 1, 1 + len(units)
    p.scripts = types.SimpleNamespace(alwayson_scripts=[controlnet])
    p.script_args = [None, *units]
    return p


# ---------------------------------------------------------------- Forge

def forge_generation(forge, unit, image, size, hires, batch_size=2):
    """process_unit_after_click_generate: preprocessor, crop_and_resize_image of its output for both sizes."""
    process = types.SimpleNamespace(resize_mode=1)
    forge.glue.before_generation(process)
    preprocessor = forge.shared.supported_preprocessors[unit.module]
    output = preprocessor(input_image=image, input_mask=None, resolution=512, slider_1=100, slider_2=200)
    assert forge.utils.judge_image_type(output), "Forge treats the Canny preview as an image"
    resize_mode = forge.external_code.resize_mode_from_value(unit.resize_mode)
    conds = []
    for h, w in (size, hires):
        placed = forge.utils.crop_and_resize_image(output, resize_mode, h, w)
        conds.append(forge.numpy_to_pytorch(placed).movedim(-1, 1).repeat(batch_size, 1, 1, 1))
    params = types.SimpleNamespace(control_cond=conds[0], control_cond_for_hr_fix=conds[1], preprocessor=preprocessor)
    preprocessor.process_after_running_preprocessors(process=process, params=params)
    return process, preprocessor, params


class UnetStandin:
    """What Forge's apply_controlnet_advanced needs of the UnetPatcher being sampled: clone() and
    add_patched_controlnet (here a list of the attached ControlNets, first attached first)."""

    def __init__(self, controlnets=()):
        self.controlnets = list(controlnets)

    def clone(self):
        return UnetStandin(self.controlnets)

    def add_patched_controlnet(self, controlnet):
        self.controlnets.append(controlnet)


def forge_processing(*units):
    """A generation as Forge makes it for an API call: its runner holds a script titled as Forge's ControlNet,
    whose arguments are the units given (dicts, as alwayson_scripts sends them)."""
    controlnet = types.SimpleNamespace(title=lambda: "ControlNet", args_from=2, args_to=2 + len(units))
    p = processing()
    p.scripts = types.SimpleNamespace(alwayson_scripts=[controlnet])
    p.script_args = [None, None, *units]
    return p


@pytest.fixture(scope="class")
def forge(tmp_path_factory):
    if not FORGE_DIR:
        pytest.skip("set FORGE_DIR to a stable-diffusion-webui-forge checkout")
    standins = write_standins(tmp_path_factory.mktemp("forge_webui"),
                              {**ENTRY_STANDINS, **COMMON_STANDINS, **FORGE_STANDINS})
    paths = [standins, FORGE_DIR, Path(FORGE_DIR, "packages_3rdparty"),
             Path(FORGE_DIR, "extensions-builtin", "sd_forge_controlnet")]
    with host_imports(paths, argv=["--always-cpu"]):  # backend/args.py reads sys.argv when imported
        yield types.SimpleNamespace(
            shared=importlib.import_module("modules_forge.shared"),
            global_state=importlib.import_module("lib_controlnet.global_state"),
            utils=importlib.import_module("lib_controlnet.utils"),
            external_code=importlib.import_module("lib_controlnet.external_code"),
            numpy_to_pytorch=importlib.import_module("modules_forge.utils").numpy_to_pytorch,
            glue=importlib.import_module("scripts.colorstroke_lib.forge_glue"),
        )
    STROKES.clear()


class TestForge:
    """Forge's built-in ControlNet: registry, model filter, the cond before sampling."""

    def test_forge_registers_our_preprocessors_and_lists_the_model(self, forge, monkeypatch):
        forge.glue.register()
        forge.glue.register()
        for name in hints.PREPROCESSORS:
            assert isinstance(forge.shared.supported_preprocessors[name], forge.glue.ColorStrokeCanny)
        assert "ColorStroke" in forge.global_state.get_all_preprocessor_tags()
        names = ["None", MODEL_NAME, "control_v11p_sd15_canny [12345678]"]
        monkeypatch.setattr(forge.global_state, "controlnet_names", names)
        assert forge.global_state.get_filtered_controlnet_names("ColorStroke") == ["None", MODEL_NAME]
        assert MODEL_NAME not in forge.global_state.get_filtered_controlnet_names("Canny")
        assert forge.global_state.get_default_preprocessor("ColorStroke") == "colorstroke_canny"

    @pytest.mark.parametrize("mode", ["Just Resize", "Crop and Resize", "Resize and Fill"])
    @pytest.mark.parametrize("source, size, hires", SIZES)
    def test_forge_cond_becomes_the_5_channel_hint_before_every_sampling(self, forge, mode, source, size, hires):
        forge.glue.register()
        image = drawing(*source)
        unit = types.SimpleNamespace(module="colorstroke_canny", model="None", resize_mode=mode, image=image,
                                     input_mode=forge.external_code.InputMode.SIMPLE)
        layer = strokes(source[0] // 3, source[1] // 3)
        STROKES.set(layer)
        process, preprocessor, params = forge_generation(forge, unit, image, size, hires)
        STROKES.clear()  # the unit keeps the strokes it was given
        for cond in (params.control_cond, params.control_cond_for_hr_fix, params.control_cond_for_hr_fix):
            mask = torch.ones(cond.shape[0], 1, *cond.shape[2:])
            hint, mask_out = preprocessor.process_before_every_sampling(
                process, cond, mask, unit=unit, params=params, cond_original=cond.clone(), mask_original=mask.clone())
            h, w = cond.shape[2:]
            assert hint.shape == (2, 5, h, w) and hint.dtype == cond.dtype and mask_out is mask
            built = hints.build_hint(hints.Drawing(image), read_stroke_layer(layer), fill=True)  # the default
            expected = to_model_polarity(hints.hint_batch([built], mode, h, w, 2), MODEL_LESS)
            np.testing.assert_array_equal(hint.numpy(), expected)
            assert hint[:, 4].max() > 0.9
            # the preview Forge placed shows the strokes in colour over grey edges: its darkest channel is the edges
            host_edges = cond[0].min(dim=0).values.numpy()
            assert placed_alike(host_edges, 1.0 - hint[0, 0].numpy()) > 0.97, "placed where Forge placed its preview"

    def test_forge_stroke_guidance_gives_the_unconditional_side_the_drawing_without_strokes(self, forge):
        """Forge's per-side weighting (compute_controlnet_weighting, its real code) on the two copies attached for
        one unit: the conditional item gets the unit's hint, the unconditional item the hint without strokes."""
        patcher = importlib.import_module("backend.patcher.controlnet")
        forge.glue.register()
        image = drawing(96, 96)
        unit = types.SimpleNamespace(module="colorstroke_canny", model="None", resize_mode="Just Resize", image=image,
                                     input_mode=forge.external_code.InputMode.SIMPLE)
        STROKES.set(strokes(32, 32), True, 0, True)
        process, preprocessor, params = forge_generation(forge, unit, image, (96, 96), (192, 192), batch_size=1)
        STROKES.clear()  # the unit keeps its guidance
        unet = UnetStandin()
        process.sd_model = types.SimpleNamespace(forge_objects=types.SimpleNamespace(unet=unet))
        # what Forge's ControlNet script sets on the unit's ControlNetPatcher before our hook (control mode Balanced)
        params.model = types.SimpleNamespace(
            model_patcher=patcher.ControlNet(torch.nn.Identity()), strength=0.8, start_percent=0.1, end_percent=0.9,
            positive_advanced_weighting=None, negative_advanced_weighting=None)
        hint, _ = preprocessor.process_before_every_sampling(process, params.control_cond, None, unit=unit,
                                                             params=params)
        model = params.model  # then Forge attaches it with the hint we return (ControlNetPatcher's own hook)
        objects = process.sd_model.forge_objects
        objects.unet = patcher.apply_controlnet_advanced(
            objects.unet, model.model_patcher, hint, model.strength, model.start_percent, model.end_percent,
            model.positive_advanced_weighting, model.negative_advanced_weighting)
        uncond, cond = objects.unet.controlnets
        assert unet.controlnets == [], "the UNet Forge handed over is not changed: Forge resets it for every pass"
        assert hint[0, 4].max() == 1, "the conditional side's hint has the strokes"
        torch.testing.assert_close(uncond.cond_hint_original, strokes_removed(hint), rtol=0, atol=0)
        torch.testing.assert_close(cond.cond_hint_original, hint, rtol=0, atol=0)
        for copy in (uncond, cond):
            assert (copy.strength, copy.timestep_percent_range) == (0.8, (0.1, 0.9))
        # one conditional and one unconditional item, Forge's cond_mark: 0 = conditional, 1 = unconditional
        weights = {}
        for name, copy in (("uncond", uncond), ("cond", cond)):
            copy.transformer_options = {"cond_or_uncond": [0, 1], "sigmas": torch.ones(1),
                                        "cond_mark": torch.tensor([0.0, 1.0])}
            control = {"input": [], "middle": [torch.ones(2, 1, 1, 1)], "output": [torch.ones(2, 1, 1, 1)] * 13}
            weighted = patcher.compute_controlnet_weighting(control, copy)
            weights[name] = [signal[:, 0, 0, 0].tolist() for signal in weighted["middle"] + weighted["output"]]
        assert weights["cond"] == [[1.0, 0.0]] * 14, "the hint with strokes on the conditional item only"
        assert weights["uncond"] == [[0.0, 1.0]] * 14, "the hint without strokes on the unconditional item only"

    def test_forge_builds_a_units_hint_once_and_resolves_its_polarity_once(self, forge, tmp_path, monkeypatch):
        forge.glue.register()
        path = checkpoint_file(tmp_path, None)
        monkeypatch.setitem(forge.global_state.controlnet_filename_dict, MODEL_NAME, path)
        built, resolved = [], []
        build, resolve = hints.build_hint, unit_model.edge_polarity
        monkeypatch.setattr(hints, "build_hint", lambda *args: built.append(args) or build(*args))
        monkeypatch.setattr(unit_model, "edge_polarity", lambda *args: resolved.append(args) or resolve(*args))
        generation.GENERATION.start(())
        image = drawing(96, 96)
        unit = types.SimpleNamespace(module="colorstroke_canny", model=MODEL_NAME, resize_mode="Just Resize",
                                     image=image, input_mode=forge.external_code.InputMode.SIMPLE)
        process, preprocessor, params = forge_generation(forge, unit, image, (96, 96), (192, 192), batch_size=1)
        for cond in (params.control_cond, params.control_cond_for_hr_fix, params.control_cond_for_hr_fix):
            hint, _ = preprocessor.process_before_every_sampling(process, cond, None, unit=unit, params=params)
            assert hint.shape[1] == 5 and hint[0, 0].mean() > 0.5, "black-on-white edges"
        assert len(built) == 1, "the preview's hint is the hint of every pass"
        assert resolved == [(path, None)]
        generation.GENERATION.start(())

    def test_forge_img2img_without_unit_image_uses_img2img_resize_mode(self, forge):
        forge.glue.register()
        image = drawing(300, 500)
        unit = types.SimpleNamespace(module="colorstroke_canny", model="None", resize_mode="Just Resize", image=None,
                                     input_mode=forge.external_code.InputMode.SIMPLE)
        process, preprocessor, params = forge_generation(forge, unit, image, (512, 512), (512, 512), batch_size=1)
        hint, _ = preprocessor.process_before_every_sampling(process, params.control_cond, None, unit=unit,
                                                             params=params)
        expected = to_model_polarity(hints.hint_batch([hints.build_hint(hints.Drawing(image), None)],
                                                      "Crop and Resize", 512, 512, 1), MODEL_LESS)
        np.testing.assert_array_equal(hint.numpy(), expected)

    def test_forge_polarity_comes_from_the_model_when_it_records_one(self, forge, tmp_path, monkeypatch):
        forge.glue.register()
        monkeypatch.setitem(forge.global_state.controlnet_filename_dict, MODEL_NAME,
                            checkpoint_file(tmp_path, BLACK_ON_WHITE))
        image = drawing(256, 256)
        unit = types.SimpleNamespace(module="colorstroke_canny", model=MODEL_NAME, resize_mode="Crop and Resize",
                                     image=image, input_mode=forge.external_code.InputMode.SIMPLE)
        process, preprocessor, params = forge_generation(forge, unit, image, (256, 256), (512, 512), batch_size=1)
        hint, _ = preprocessor.process_before_every_sampling(process, params.control_cond, None, unit=unit,
                                                             params=params)
        expected = to_model_polarity(hints.hint_batch([hints.build_hint(hints.Drawing(image), None)],
                                                      "Crop and Resize", 256, 256, 1), BLACK_ON_WHITE)
        np.testing.assert_array_equal(hint.numpy(), expected)
        assert hint[0, 0].mean() > 0.5, "black-on-white edges: mostly 1"

    @pytest.mark.parametrize("preprocessor_name, expected", [("colorstroke_canny", BLACK_ON_WHITE),
                                                             ("colorstroke_canny_white_on_black", WHITE_ON_BLACK)])
    def test_forge_model_without_polarity_is_black_on_white_unless_chosen(self, forge, tmp_path, monkeypatch,
                                                                           preprocessor_name, expected):
        forge.glue.register()
        monkeypatch.setitem(forge.global_state.controlnet_filename_dict, MODEL_NAME, checkpoint_file(tmp_path, None))
        image = drawing(128, 128)
        unit = types.SimpleNamespace(module=preprocessor_name, model=MODEL_NAME, resize_mode="Just Resize",
                                     image=image, input_mode=forge.external_code.InputMode.SIMPLE)
        process, preprocessor, params = forge_generation(forge, unit, image, (128, 128), (256, 256), batch_size=1)
        hint, _ = preprocessor.process_before_every_sampling(process, params.control_cond, None, unit=unit,
                                                             params=params)
        expected_hint = to_model_polarity(hints.hint_batch([hints.build_hint(hints.Drawing(image), None)],
                                                           "Just Resize", 128, 128, 1), expected)
        np.testing.assert_array_equal(hint.numpy(), expected_hint)

    def test_forge_fill_off_keeps_the_strokes_sparse_and_notes_a_model_trained_with_fill(self, forge, tmp_path,
                                                                                            monkeypatch):
        """The note reaches the infotext, which is written as sampling starts (p.init), before Forge's
        per-sampling hook: found live, where a note made in that hook came too late."""
        forge.glue.register()
        script = load_entry().ColorStrokeScript()
        trained = {"probability": 0.5, "gap": 6, "alpha": 0.5}
        monkeypatch.setitem(forge.global_state.controlnet_filename_dict, MODEL_NAME,
                            checkpoint_file(tmp_path, None, fill=trained))
        image, layer = drawing(64, 64), strokes(64, 64)
        p = forge_processing({"enabled": True, "module": "colorstroke_canny", "model": MODEL_NAME})
        script.before_process(p, png_base64(layer), False, 0, None)  # the section: layer, fill off, gap, canvas
        unit = types.SimpleNamespace(module="colorstroke_canny", model=MODEL_NAME, resize_mode="Just Resize",
                                     image=image, input_mode=forge.external_code.InputMode.SIMPLE)
        process, preprocessor, params = forge_generation(forge, unit, image, (64, 64), (64, 64))
        p.init([], [], [])
        assert "trained with strokes filled between the lines" in p.extra_generation_params["Color Stroke"]
        cond = params.control_cond
        hint, _ = preprocessor.process_before_every_sampling(
            process, cond, torch.ones(cond.shape[0], 1, 64, 64), unit=unit, params=params,
            cond_original=cond.clone(), mask_original=None)
        np.testing.assert_array_equal(params.colorstroke[0],
                                      hints.build_hint(hints.Drawing(image), read_stroke_layer(layer)))
        assert not (hint[:, 4] == 0.5).any(), "no flats with fill off"
        script.postprocess(p, None, None, None)

    def test_forge_sliders_start_at_1_as_on_a1111(self, forge):
        forge.glue.register()
        for name in hints.PREPROCESSORS:
            preprocessor = forge.shared.supported_preprocessors[name]
            assert preprocessor.slider_1.gradio_update_kwargs["minimum"] == 1
            assert preprocessor.slider_2.gradio_update_kwargs["minimum"] == 1

    def test_forge_preview_runs_leave_nothing_behind(self, forge):
        forge.glue.register()
        preprocessor = forge.shared.supported_preprocessors["colorstroke_canny"]
        preprocessor(input_image=drawing(64, 64), resolution=512, slider_1=100, slider_2=200)  # the UI's preview button
        image = drawing(128, 96)
        unit = types.SimpleNamespace(module="colorstroke_canny", model="None", resize_mode="Just Resize", image=image,
                                     input_mode=forge.external_code.InputMode.SIMPLE)
        _, _, params = forge_generation(forge, unit, image, (128, 128), (256, 256), batch_size=1)
        assert len(params.colorstroke) == 1, "only the generation's drawing"
        np.testing.assert_array_equal(params.colorstroke[0], hints.build_hint(hints.Drawing(image), None))

    def test_forge_preview_shows_the_strokes_over_the_edges(self, forge):
        forge.glue.register()
        preprocessor = forge.shared.supported_preprocessors["colorstroke_canny"]
        image = drawing(90, 120)
        STROKES.set(strokes(90, 120))
        shown = preprocessor(input_image=image, resolution=512, slider_1=100, slider_2=200)
        STROKES.clear()
        assert shown.shape == (90, 120, 3) and shown.dtype == np.uint8
        np.testing.assert_array_equal(shown[30, 40], (230, 40, 30)), "the red blob, in its colour"
        edges_only = preprocessor(input_image=image, resolution=512, slider_1=100, slider_2=200)
        assert set(np.unique(edges_only)) <= {0, 204}, "outside a generation: grey edges on black"

    def test_forge_entry_offers_the_canvas_and_stores_its_strokes(self, forge, capsys, tmp_path, monkeypatch):
        import gradio

        entry = load_entry()
        assert entry.HOST == entry.FORGE and entry.problem is None
        assert isinstance(forge.shared.supported_preprocessors["colorstroke_canny"], forge.glue.ColorStrokeCanny)
        script = entry.ColorStrokeScript()
        gradio.created.clear()
        controls = script.ui(is_img2img=False)
        assert [type(c).__name__ for c in controls] == ["Image", "Checkbox", "Slider", "Checkbox", "LogicalImage"], \
            "upload, fill, fill gap, stroke guidance, then Forge's canvas layer"
        assert controls[3].kwargs["label"] == "Stroke guidance" and controls[3].kwargs["value"] is False
        caption = next(i for i, b in enumerate(gradio.created) if b.args and b.args[0] == entry.FORGE_CANVAS_HELP)
        canvas = next(i for i, b in enumerate(gradio.created) if type(b).__name__ == "HTML")
        assert caption < canvas, "the canvas's caption comes first"
        layer = strokes(40, 40)
        script.before_process(processing(), None, True, 0, False, png_base64(layer))  # painted on the canvas only
        np.testing.assert_array_equal(STROKES.get().picture, layer)
        script.postprocess(processing(), None, None, None)
        assert STROKES.get() is None
        monkeypatch.setitem(forge.global_state.controlnet_filename_dict, MODEL_NAME, checkpoint_file(tmp_path, None))
        for cfg_scale, said in ((7.0, False), (1.0, True)):  # stroke guidance is said beside the image
            p = forge_processing({"enabled": True, "module": "colorstroke_canny", "model": MODEL_NAME})
            p.cfg_scale = cfg_scale
            script.before_process(p, png_base64(layer), True, 0, True, None)
            assert STROKES.guided
            notes = generation.GENERATION.notes
            assert "stroke guidance (the negative side has the drawing without strokes)" in notes
            assert any("stroke guidance does nothing at CFG scale 1" in note for note in notes) is said
            script.postprocess(p, None, None, None)
        opaque = np.full((8, 8, 4), 255, np.uint8)  # an RGB upload that gradio turned into RGBA: strokes on white
        opaque[2:4, 2:4, :3] = (40, 200, 40)
        p = processing()
        script.before_process(p, opaque, None)
        assert STROKES.get().layer[..., 3].sum() == 4
        p.init([], [], [])
        assert "plain background #ffffff counted as no stroke" in capsys.readouterr().out
        assert "plain background #ffffff counted as no stroke" in p.extra_generation_params["Color Stroke"]
        script.postprocess(p, None, opaque, None)
        p = processing()
        script.before_process(p, photo_png(), None)  # over the API: a picture that cannot say where strokes are
        with pytest.raises(ValueError, match="Color Stroke: the stroke layer has no transparent pixels"):
            p.init([], [], [])
        assert STROKES.get() is None

    def test_forge_a_unit_that_cannot_give_color_stroke_control_stops_the_generation(self, forge, tmp_path,
                                                                                     monkeypatch):
        """Units as Forge's API passes them (dicts, read by Forge's ControlNetUnit); Forge knows models only by
        their exact "name [hash]", and drops a unit whose name it does not know."""
        from preprocessors import HintError

        forge.glue.register()
        script = load_entry().ColorStrokeScript()
        monkeypatch.setitem(forge.global_state.controlnet_filename_dict, MODEL_NAME, checkpoint_file(tmp_path, None))
        bare = {"enabled": True, "module": "colorstroke_canny", "model": "control_colorstroke_sd15"}
        p = forge_processing(bare)
        script.before_process(p, None, None)
        with pytest.raises(HintError, match=r"^Color Stroke: ControlNet Unit 0 \(colorstroke_canny\): no ControlNet "
                                            r"model is named 'control_colorstroke_sd15'; did you mean "
                                            r"'control_colorstroke_sd15 \[deadbeef\]'\?"):
            p.init([], [], [])
        image = drawing(64, 64)
        p = forge_processing({**bare, "model": MODEL_NAME, "image": png_base64(image)})
        script.before_process(p, None, None)
        with pytest.raises(HintError, match="ControlNet did not apply the Color Stroke hint"):
            p.init([], [], [])  # Forge failed after the check: nothing was delivered
        p = forge_processing({**bare, "model": MODEL_NAME})
        script.before_process(p, None, None)
        unit = types.SimpleNamespace(module="colorstroke_canny", model=MODEL_NAME, resize_mode="Just Resize",
                                     image=image, input_mode=forge.external_code.InputMode.SIMPLE)
        forge_generation(forge, unit, image, (64, 64), (128, 128), batch_size=1)
        p.init([], [], [])
        assert p.inits == [[]], "the unit's hint was handed over: the generation goes on"
        script.postprocess(p, None, None, None)

    def test_forge_lets_an_error_raised_from_p_init_reach_the_caller(self, forge):
        """What ``stop_generation`` relies on, read from Forge's source (A1111's is the same): every script
        hook runs inside try/except, while process_images_inner calls p.init outside any try."""
        def calls_outside_try(function, name):
            found = []

            def visit(node, guarded):
                if isinstance(node, ast.Call) and ast.unparse(node.func) == name:
                    found.append(guarded)
                for child in ast.iter_child_nodes(node):
                    visit(child, guarded or isinstance(node, ast.Try))

            visit(function, False)
            return found

        processing = ast.parse(Path(FORGE_DIR, "modules", "processing.py").read_text())
        inner = next(n for n in processing.body if isinstance(n, ast.FunctionDef) and n.name == "process_images_inner")
        assert calls_outside_try(inner, "p.init") == [False]
        runner = next(n for n in ast.parse(Path(FORGE_DIR, "modules", "scripts.py").read_text()).body
                      if isinstance(n, ast.ClassDef) and n.name == "ScriptRunner")
        before_process = next(n for n in runner.body if isinstance(n, ast.FunctionDef) and n.name == "before_process")
        assert calls_outside_try(before_process, "script.before_process") == [True]

"""A1111 + sd-webui-controlnet: our preprocessors in its registry, and its detectmap_proc taught our hint.

Imported only on A1111 with sd-webui-controlnet loaded (its modules are in ``sys.modules`` by then,
``metadata.ini`` orders us after it). The flow per ControlNet unit in its ``get_control``:

1. ``cached_call`` -> our ``__call__`` (never cached: the strokes are not in its cache key), which
   returns ``Result(HintMap, [Canny preview])``: the 5xHxW hint of the drawing and the stored strokes
   at the drawing's size (built once), with the edge polarity of the unit's model.
2. ``Script.detectmap_proc(HintMap, module, resize_mode, h, w)``, once for the generation size and
   once for hires fix: the wrapper fits the hint with ``geometry.fit_hint`` and returns the
   1x5xhxw float tensor in the model's polarity (``to_model_polarity``, the one conversion) plus an
   RGB preview (strokes over edges); any other map goes to the original, unchanged. A hint that gets
   here has reached ControlNet: ``generation.GENERATION`` counts it.
"""
from __future__ import annotations

from pathlib import Path

import torch
from internal_controlnet.external_code import (
    ControlNetUnit,
    Preprocessor,
    PreprocessorParameter,
    find_cn_script,
)
from modules import devices
from modules import scripts as webui_scripts
from scripts import global_state

from preprocessors import DEFAULT_CANNY, hint_preview, to_model_polarity

from . import hints
from .generation import GENERATION, UNIT_FIELDS, UnitRequest, check_unit, requested_units, unit_hint
from .geometry import fit_hint
from .store import STROKES


def model_path(model_name) -> str | None:
    """The file of a unit's model ("name [hash]", or just "name"); None for no model or an unknown one."""
    if not model_name or model_name == "None":
        return None
    path = global_state.cn_models.get(model_name)
    if path is None:
        path = global_state.cn_models.get(global_state.cn_models_names.get(model_name.split(" [")[0].lower()))
    return path


class ColorStrokeCanny(Preprocessor):
    """Canny of the drawing plus the stored stroke layer -> a ``hints.HintMap`` (5 channels).

    sd-webui-controlnet lists under our tag (Control Type "ColorStroke") only the models whose name
    contains the tag, lower-cased: ``hints.MODEL_NAME_FILTER``.
    """

    def __init__(self, name: str, chosen_polarity: str | None):
        super().__init__(name=name)
        self.tags = [hints.TAG]
        self.chosen_polarity = chosen_polarity
        # the hint is built at the drawing's own size and fitted later: resolution is not used
        self.slider_resolution = PreprocessorParameter(label="Resolution", minimum=64, maximum=2048, value=512, step=8,
                                                       visible=False)
        self.slider_1 = PreprocessorParameter(label="Canny low threshold", minimum=1, maximum=255, step=1,
                                              value=DEFAULT_CANNY.low)
        self.slider_2 = PreprocessorParameter(label="Canny high threshold", minimum=1, maximum=255, step=1,
                                              value=DEFAULT_CANNY.high)
        self.sorting_priority = hints.SORTING_PRIORITY[name]

    def _cached_call(self, *args, **kwargs):
        return self(*args, **kwargs)

    def __call__(self, input_image, resolution, slider_1=None, slider_2=None, slider_3=None, input_mask=None,
                 model=None, **kwargs):
        """input_image: HxWx3 uint8 RGB drawing; model: the unit's model name (absent in API previews)."""
        drawing = hints.Drawing(input_image, *hints.thresholds(slider_1, slider_2))
        path = model_path(model)
        hint_map = hints.HintMap(unit_hint(drawing, STROKES), GENERATION.model_polarity(path, self.chosen_polarity))
        GENERATION.note_fill(path, STROKES.filled)
        return Preprocessor.Result(hint_map, [hints.canny_preview(hint_map.hint)])


def register() -> None:
    """Add our preprocessors to the registry, replacing earlier registrations (a UI reload)."""
    for name, chosen in hints.PREPROCESSORS.items():
        Preprocessor.all_processors.pop(name, None)
        Preprocessor.all_processors_by_name.pop(name, None)
        Preprocessor.add_supported_preprocessor(ColorStrokeCanny(name, chosen))


def hint_control(hint_map: hints.HintMap, resize_mode, height: int, width: int):
    """detectmap_proc for our hint: (1x5xheightxwidth float tensor on the ControlNet device, HxWx3 uint8 preview)."""
    fitted = fit_hint(hint_map.hint, resize_mode, height, width)
    control = torch.from_numpy(to_model_polarity(fitted, hint_map.model_polarity))[None]
    GENERATION.deliver(hint_map)
    return control.to(devices.get_device_for("controlnet")), hint_preview(fitted)


_ORIGINAL = "_colorstroke_original"
_wrapped_classes = []


def install_wrapper(script_class) -> None:
    """Make ``script_class.detectmap_proc`` (a staticmethod) take our hint maps; idempotent."""
    script_class = next(c for c in script_class.__mro__ if "detectmap_proc" in c.__dict__)
    original = script_class.__dict__["detectmap_proc"].__func__
    if hasattr(original, _ORIGINAL):
        return

    def detectmap_proc(detected_map, module, resize_mode, h, w):
        if isinstance(detected_map, hints.HintMap):
            return hint_control(detected_map, resize_mode, h, w)
        return original(detected_map, module, resize_mode, h, w)

    setattr(detectmap_proc, _ORIGINAL, original)
    script_class.detectmap_proc = staticmethod(detectmap_proc)
    _wrapped_classes.append(script_class)


def remove_wrappers() -> None:
    """Put back every detectmap_proc we wrapped that is still ours (another wrapper on top stays)."""
    while _wrapped_classes:
        script_class = _wrapped_classes.pop()
        current = script_class.__dict__["detectmap_proc"].__func__
        if hasattr(current, _ORIGINAL):
            script_class.detectmap_proc = staticmethod(getattr(current, _ORIGINAL))


def controlnet_script_loaded() -> bool:
    """True when sd-webui-controlnet's own script (``scripts/controlnet.py``) loaded.

    Its packages may import while that script failed (e.g. a package version it cannot use): the host then
    runs no ControlNet, and our preprocessors must not be offered. ``metadata.ini`` loads us after it.
    """
    return any(Path(data.path).name == "controlnet.py" and Path(data.basedir, "internal_controlnet").is_dir()
               for data in webui_scripts.scripts_data)


def before_generation(p) -> None:
    """Wrap the detectmap_proc of the ControlNet script that will run for ``p`` (if any)."""
    controlnet = find_cn_script(p.scripts)
    if controlnet is not None:
        install_wrapper(type(controlnet))


def units(p) -> list[UnitRequest]:
    """The enabled ControlNet units of the generation ``p`` (API dicts included), numbered as in the UI; read
    without building sd-webui-controlnet's units, which decodes an API unit's images (its ControlNet does)."""
    controlnet = find_cn_script(p.scripts)
    if controlnet is None:
        return []
    defaults = {name: ControlNetUnit.__fields__[name].default for name in UNIT_FIELDS}  # pydantic 1, as A1111 pins
    return requested_units(p.script_args[controlnet.args_from:controlnet.args_to], defaults)


def check(unit: UnitRequest, base: tuple[str, str] | None) -> None:
    """HintError when ``unit`` would not get the control it asks for on ``base`` (``generation.check_unit``)."""
    check_unit(unit, model_path(unit.model) if unit.has_model else None, global_state.cn_models, base)


def on_unload() -> None:
    remove_wrappers()

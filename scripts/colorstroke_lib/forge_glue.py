"""Forge: our preprocessors in its built-in ControlNet's registry; the 5-channel hint goes in before sampling.

Forge's ControlNet takes only 3/4-channel images through its image path, so for each unit:

1. ``__call__`` builds the hint of the drawing and the stored strokes, once, records it and returns its
   preview, strokes over edges (HxWx3 uint8): Forge shows and saves it, and crops/resizes it into the
   unit's cond, one for the generation size and one for hires fix.
2. ``process_after_running_preprocessors`` (after Forge loaded the unit's model) hands the recorded hints
   to the unit's parameters (``params.colorstroke``), so later units and generations cannot mix them up;
   ``generation.GENERATION`` counts the unit as delivered.
3. ``process_before_every_sampling`` (each pass, hires included) replaces the Bx3xhxw cond with those
   hints fitted to the cond's size with the unit's resize mode, turned into the polarity of the unit's
   model (``to_model_polarity``, the one conversion; the polarity is resolved once per unit). Forge runs it
   twice before a hires pass and resets the UNet's patches in between, so it changes no state of its own.
4. With the section's stroke guidance (``stroke_guidance``), it also attaches a second copy of the unit's
   ControlNet to the UNet being sampled, with the hint's strokes removed, on the unconditional side only,
   and leaves Forge's own copy on the conditional side only: what ComfyUI's Apply node does with its
   ``stroke_guidance``, through Forge's per-side ControlNet weighting.
"""
from __future__ import annotations

import torch
from backend.patcher.controlnet import apply_controlnet_advanced
from lib_controlnet import global_state
from lib_controlnet.enums import InputMode
from lib_controlnet.external_code import ControlNetUnit
from modules_forge.shared import add_supported_preprocessor
from modules_forge.supported_preprocessor import Preprocessor, PreprocessorParameter

from preprocessors import DEFAULT_CANNY, hint_preview, strokes_removed, to_model_polarity

from . import hints
from .generation import GENERATION, UNIT_FIELDS, UnitRequest, check_unit, requested_units, unit_hint
from .store import STROKES

CONTROLNET_TITLE = "ControlNet"  # Forge's ControlNet script, among the generation's always-on scripts


def model_path(model_name) -> str | None:
    """The file of a unit's model name ("name [hash]"); None for no model or an unknown name.

    Exact names only: Forge itself looks the unit's model up exactly (``get_controlnet_filename``) before
    any preprocessor hook runs, so a bare name never gets this far.
    """
    if not model_name or model_name == "None":
        return None
    return global_state.controlnet_filename_dict.get(model_name)


# Forge's per-side weighting of a patched ControlNet (``positive_advanced_weighting`` / ``negative_...``): a weight
# for each of its residuals by block, 1 for a residual the lists do not reach; these reach every residual of an
# SD 1.5 or SDXL ControlNet (13 / 10) with 0, so that side gets nothing from it
NO_CONTROL = {"input": [0.0] * 16, "middle": [0.0] * 4, "output": [0.0] * 16}


def stroke_guidance(process, controlnet, hint: torch.Tensor, mask) -> None:
    """Stroke guidance for one unit: the unconditional side of the UNet being sampled gets the unit's ControlNet
    with ``hint``'s strokes removed; the conditional side keeps the whole hint.

    controlnet: the unit's ``ControlNetPatcher`` (``params.model``), with Forge's strength, step range and per-side
    weighting of this pass already set; Forge attaches it with ``hint`` right after this (conditional side only
    from here on). The copy attached here takes the unconditional side's weighting Forge chose (its control
    mode's: none for "ControlNet is more important", which leaves the guidance nothing to do) and the unit's
    mask. Patches ``process.sd_model.forge_objects.unet``, which Forge resets before every sampling pass.
    """
    objects = process.sd_model.forge_objects
    objects.unet = apply_controlnet_advanced(
        unet=objects.unet, controlnet=controlnet.model_patcher, image_bchw=strokes_removed(hint),
        strength=controlnet.strength, start_percent=controlnet.start_percent, end_percent=controlnet.end_percent,
        positive_advanced_weighting=NO_CONTROL, negative_advanced_weighting=controlnet.negative_advanced_weighting,
        advanced_mask_weighting=mask)
    controlnet.negative_advanced_weighting = NO_CONTROL


def resize_mode_of(process, unit):
    """The resize mode Forge used for the unit's cond: img2img's own when the unit has no image."""
    if unit.image is None and getattr(unit.input_mode, "value", unit.input_mode) == InputMode.SIMPLE.value:
        return getattr(process, "resize_mode", unit.resize_mode)
    return unit.resize_mode


class ColorStrokeCanny(Preprocessor):
    """Canny of the drawing for Forge's image path; the 5-channel hint replaces it before sampling.

    Forge lists under its tag only the models whose file name contains ``hints.MODEL_NAME_FILTER``.
    """

    def __init__(self, name: str, chosen_polarity: str | None):
        super().__init__()
        self.name = name
        self.tags = [hints.TAG]
        self.model_filename_filters = [hints.MODEL_NAME_FILTER]  # the models Forge lists under our tag
        self.chosen_polarity = chosen_polarity
        # the hint is built at the drawing's own size and fitted later: resolution is not used
        self.slider_resolution = PreprocessorParameter(visible=False)
        # as sd-webui-controlnet's (cn_glue): the same thresholds are reachable on both hosts
        self.slider_1 = PreprocessorParameter(label="Canny low threshold", minimum=1, maximum=255, step=1,
                                              value=DEFAULT_CANNY.low, visible=True)
        self.slider_2 = PreprocessorParameter(label="Canny high threshold", minimum=1, maximum=255, step=1,
                                              value=DEFAULT_CANNY.high, visible=True)
        self.sorting_priority = hints.SORTING_PRIORITY[name]
        self.use_soft_projection_in_hr_fix = True  # as Forge's canny
        self._recorded = []

    def __call__(self, input_image, resolution, slider_1=None, slider_2=None, slider_3=None, **kwargs):
        """input_image: HxWx3 uint8 RGB drawing -> HxWx3 uint8 preview: the strokes over the edges, as
        ``preprocessors.hint_preview`` draws them (the edges alone outside a generation)."""
        drawing = hints.Drawing(input_image, *hints.thresholds(slider_1, slider_2))
        hint = unit_hint(drawing, STROKES)
        self._recorded.append(hint)
        return hint_preview(hint)

    def process_after_running_preprocessors(self, process, params, *args, **kwargs):
        params.colorstroke = tuple(self._recorded)  # the unit's 5xHxW hints, one per drawing
        params.colorstroke_guided = STROKES.guided
        self._recorded = []
        GENERATION.deliver(params)

    def process_before_every_sampling(self, process, cond, mask, *args, **kwargs):
        """cond: Bx3xhxw (the Canny, as Forge placed it) -> Bx5xhxw hint on cond's device and dtype; with stroke
        guidance, the unit's ControlNet attached for the unconditional side too (``stroke_guidance``)."""
        unit = kwargs["unit"]
        path = model_path(unit.model)
        edge_polarity = GENERATION.model_polarity(path, self.chosen_polarity)
        batch = hints.hint_batch(
            kwargs["params"].colorstroke, resize_mode_of(process, unit),
            height=cond.shape[-2], width=cond.shape[-1], batch_size=cond.shape[0],
        )
        hint = torch.from_numpy(to_model_polarity(batch, edge_polarity)).to(device=cond.device, dtype=cond.dtype)
        if kwargs["params"].colorstroke_guided:
            stroke_guidance(process, kwargs["params"].model, hint, mask)
        return hint, mask


_registered = {}


def register() -> None:
    """Add our preprocessors to Forge's registry (a later registration replaces an earlier one)."""
    for name, chosen in hints.PREPROCESSORS.items():
        _registered[name] = ColorStrokeCanny(name, chosen)
        add_supported_preprocessor(_registered[name])


def before_generation(p) -> None:
    """Forget drawings recorded outside a generation (the UI's preview runs the preprocessor too)."""
    for preprocessor in _registered.values():
        preprocessor._recorded = []


def units(p) -> list[UnitRequest]:
    """The enabled ControlNet units of the generation ``p`` (API dicts included), numbered as in the UI; read
    without building Forge's units, which decodes an API unit's images (its ControlNet does)."""
    runner = getattr(p, "scripts", None)
    controlnet = next((s for s in getattr(runner, "alwayson_scripts", ()) if s.title() == CONTROLNET_TITLE), None)
    if controlnet is None:
        return []
    defaults = {name: getattr(ControlNetUnit, name) for name in UNIT_FIELDS}  # a dataclass's defaults
    return requested_units(p.script_args[controlnet.args_from:controlnet.args_to], defaults)


def check(unit: UnitRequest, base: tuple[str, str] | None) -> None:
    """HintError when ``unit`` would not get the control it asks for on ``base`` (``generation.check_unit``);
    Forge knows a model only by its exact name, "name [hash]". For one of our units, a fill its model was not
    trained with is noted here: the infotext is written as sampling starts, before Forge's per-sampling hooks run."""
    path = model_path(unit.model) if unit.has_model else None
    check_unit(unit, path, global_state.controlnet_filename_dict, base)
    if unit.ours:
        GENERATION.note_fill(path, STROKES.filled)


def on_unload() -> None:
    """Nothing to undo: a reload registers fresh preprocessors under the same names."""

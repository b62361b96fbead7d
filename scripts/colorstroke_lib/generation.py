"""The ControlNet units of the generation in progress: checked before it runs, counted as their hints reach
ControlNet, so that no generation returns an image without the Color Stroke control it asked for.

Both WebUIs run every script hook, ControlNet's own work included, inside a try/except that only prints:
a unit whose model is missing, misnamed or of another kind is dropped, and the image comes back without
that control (through the API: HTTP 200). So:

1. before the generation, ``check_unit`` looks at every enabled unit: one with our preprocessor needs a
   model the host knows by that name, and that model must be a Color Stroke ControlNet; a Color Stroke
   model needs our preprocessor;
2. when the host is about to sample, every unit with our preprocessor must have handed its hint to
   ControlNet (``Generation.delivered``); ``Generation.shortfall`` says which did not.

A unit's hint that cannot be built (a misread stroke layer, ``unit_hint``) stops the generation with the
reason. The edge polarity of a unit's model is resolved once per generation and (file, choice):
``Generation.model_polarity``; a model trained with fill other than the section's gets a note (``note_fill``).

Host-free: the glue reads the units (``requested_units``) and the model files (``cn_glue``, ``forge_glue``),
the entry script stops the generation (``scripts/colorstroke.py``). The hosts run one generation at a time.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from model import fill_note
from preprocessors import HINT_CHANNELS, HintError, stretch_note

from . import hints, unit_model

MODEL_LIST_ROUTE = "GET /controlnet/model_list"
UNIT_FIELDS = ("enabled", "module", "model")  # what ``requested_units`` reads of a host's ControlNet unit


@dataclass(frozen=True)
class UnitRequest:
    """An enabled ControlNet unit as the generation asks for it.

    index: its place among the units, from 0, as both UIs number them ("ControlNet Unit 0");
    module: its preprocessor's name; model: its model's name as given ("name [hash]" or "name"), or None.
    """

    index: int
    module: str
    model: str | None

    @property
    def ours(self) -> bool:
        return self.module in hints.PREPROCESSORS

    @property
    def has_model(self) -> bool:
        return self.model not in (None, "", "None")

    @property
    def label(self) -> str:
        return f"ControlNet Unit {self.index} ({self.module})"


def requested_units(script_args, defaults: dict) -> list[UnitRequest]:
    """The enabled ControlNet units among the ControlNet script's arguments, numbered from 0 among the units.

    An argument is a unit when it is a dict (an API call's unit; a missing field takes ``defaults``, the host's
    ControlNetUnit defaults of ``UNIT_FIELDS``) or an object with those fields (the UI's units). Only these
    fields are read: building the host's unit from a dict would decode the API's images, which the host's
    ControlNet does itself.
    """
    units = [arg for arg in script_args
             if isinstance(arg, dict) or all(hasattr(arg, name) for name in UNIT_FIELDS)]
    requests = []
    for index, unit in enumerate(units):
        fields = {**defaults, **unit} if isinstance(unit, dict) else {name: getattr(unit, name) for name in UNIT_FIELDS}
        if fields["enabled"]:
            requests.append(UnitRequest(index, fields["module"], fields["model"]))
    return requests


def same_name(model: str, known: str) -> bool:
    """True when two model names differ at most by their " [hash]" part or letter case."""
    return model.split(" [")[0].strip().lower() == known.split(" [")[0].strip().lower()


def check_unit(unit: UnitRequest, path: str | None, known_names, base: tuple[str, str] | None = None) -> None:
    """Raise HintError saying what to change when ``unit`` would not give the control it asks for.

    path: the file the host loads for ``unit.model``; None when the host knows no model by that name.
    known_names: the model names the host lists (to suggest the one meant). base: (family, name) of the checkpoint
    being sampled (``unit_model.sampled_base``), None when unknown.
    """
    if not unit.ours:
        info = unit_model.checkpoint_info(path) if unit.has_model else None
        if info is not None and info.kind == "controlnet" and info.hint_channels == HINT_CHANNELS:
            raise HintError(f"{unit.label}: {unit.model} is a Color Stroke ControlNet, which takes the 5-channel hint "
                            f"of the preprocessor {hints.DEFAULT_PREPROCESSOR}: pick that preprocessor for it")
        return
    if not unit.has_model:
        raise HintError(f"{unit.label} has no model: pick a Color Stroke ControlNet (its file name contains "
                        f"'{hints.MODEL_NAME_FILTER}') in the unit's Model list")
    if path is None:
        meant = [name for name in known_names if same_name(unit.model, name) and name != unit.model]
        if meant:
            advice = (f"did you mean {meant[0]!r}? Give the model's full name with its hash, as the Model list and "
                      f"{MODEL_LIST_ROUTE} show it")
        else:
            advice = ("put the file in the ControlNet models folder and press the refresh button next to the Model "
                      f"list, or pick a listed model ({MODEL_LIST_ROUTE} lists them)")
        raise HintError(f"{unit.label}: no ControlNet model is named {unit.model!r}; {advice}")
    try:
        unit_model.check_model(path, base)
    except ValueError as error:  # model.CheckpointError: what the file is, and what to do
        raise HintError(f"{unit.label}: {error}") from None


class Generation:
    """What the generation in progress asked for (our units) and what reached ControlNet (their hints)."""

    def __init__(self):
        self.start(())

    def start(self, units) -> None:
        """A new generation that asks for ``units`` (UnitRequest, ours and others)."""
        self.expected = [unit for unit in units if unit.ours]
        self._delivered = {}
        self._refusals = []
        self._polarities = {}
        self.notes = []

    def model_polarity(self, path: str | None, chosen: str | None) -> str:
        """The edge polarity for a unit's model file (None: none in sight) and the preprocessor's choice:
        ``unit_model.edge_polarity``, once per generation for each (file, choice), so once per unit."""
        if (path, chosen) not in self._polarities:
            self._polarities[path, chosen] = unit_model.edge_polarity(path, chosen)
        return self._polarities[path, chosen]

    def refuse(self, reason: str) -> None:
        """A unit's hint could not be built, for ``reason``: the generation stops with it (``shortfall``)."""
        if reason not in self._refusals:
            self._refusals.append(reason)

    def deliver(self, hint) -> None:
        """A unit's hint reached ControlNet; ``hint`` is any object standing for it (kept, counted once)."""
        self._delivered[id(hint)] = hint

    @property
    def delivered(self) -> int:
        return len(self._delivered)

    def note(self, text: str | None) -> None:
        """Something the person should see beside the image (e.g. a stretched stroke layer); once each."""
        if text and text not in self.notes:
            self.notes.append(text)

    def note_fit(self, strokes, drawing) -> None:
        """Note how a stroke layer (a ``StrokeReading``, or None) is fitted to a drawing (HxW[xC]) of another
        size."""
        if strokes is not None:
            self.note(stretch_note(strokes.layer.shape, drawing.shape))

    def note_fill(self, path: str | None, filled: bool) -> None:
        """Note when the unit's model file (None: none in sight) was trained with fill other than ``filled``
        (``model.fill_note``: the section's fill was on and had strokes)."""
        info = unit_model.checkpoint_info(path)
        if info is not None:
            self.note(fill_note(info.fill, filled, os.path.basename(path)))

    def shortfall(self) -> str | None:
        """Why the generation must stop because a unit's hint never reached ControlNet, or None."""
        if self.delivered >= len(self.expected):
            return None
        if self._refusals:
            return "; ".join(self._refusals)
        units = ", ".join(f"{unit.label} with {unit.model}" for unit in self.expected)
        return (f"ControlNet did not apply the Color Stroke hint ({self.delivered} of {len(self.expected)} reached it; "
                f"asked for: {units}). The console shows ControlNet's error; the generation stopped rather than "
                "return an image without the control asked for")


GENERATION = Generation()


def unit_hint(drawing: hints.Drawing, store) -> np.ndarray:
    """``hints.build_hint`` for a unit's preprocessor, with the layer and fill options of ``store`` (the
    ``StrokeStore``); notes how the layer is fitted to the drawing. A layer it refuses stops the generation with the
    reason (the hosts only print what a preprocessor raises)."""
    strokes = store.get()
    try:
        hint = hints.build_hint(drawing, strokes, store.fill, store.fill_gap)
    except HintError as error:
        GENERATION.refuse(str(error))
        raise
    GENERATION.note_fit(strokes, drawing.image)
    return hint

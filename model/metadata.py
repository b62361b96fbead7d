"""Checkpoint metadata: the safetensors header keys this project writes and how they are read back.

Every key is ``colorstroke.<name>`` and every value a string (safetensors allows only str -> str):

=================================  =====================================================================
key                                value
=================================  =====================================================================
``colorstroke.hint_format``        ``HINT_FORMAT`` of the contract (``color_stroke_canny``)
``colorstroke.hint_version``       ``HINT_VERSION`` the model was trained with (integer)
``colorstroke.hint_channels``      channels of the hint (5)
``colorstroke.edge_polarity``      ``white_on_black`` or ``black_on_white``
``colorstroke.base_family``        base model family (``sd15``, ``sdxl``: ``model.families``)
``colorstroke.cross_attention_dim`` text embedding width (768 for SD 1.5, 2048 for SDXL)
``colorstroke.layout``             ``diffusers``, ``ldm`` or ``control_lora``: the key names of the tensors in
                                   the file (``control_lora``: low-rank differences, ``model.control_lora``)
``colorstroke.lora_rank``          a control-LoRA's rank (the largest of its layers'; smaller layers cap it)
``colorstroke.lora_targets``       which layers a control-LoRA holds as low-rank differences (``LORA_TARGETS``)
``colorstroke.middle_block_only``  ``true`` when trained without the residuals into the decoder blocks
``colorstroke.training_step``      optimiser step the weights come from (integer), when known
``colorstroke.config``             the diffusers ``ControlNetModel`` config as JSON (exact rebuild)
``colorstroke.recipe``             the trainer's recipe options as JSON (timestep sampling, loss weights, ...)
``colorstroke.strokes``            the stroke generator of training (``StrokeParams``) as JSON
``colorstroke.phases``             JSON list of ``--new_phase`` resumes: ``from_step`` and the changed options
``colorstroke.fill``               JSON object: how training filled its strokes (``probability`` of a filled
                                   sample, ``gap`` in pixels, ``alpha`` of filled pixels); absent before the fill
``colorstroke.buckets``            JSON list of the aspect-ratio buckets trained on, [height, width] each;
                                   ``null`` for square training (``--aspect_buckets`` off)
=================================  =====================================================================

Other keys given to ``save_checkpoint`` are written as ``colorstroke.<name>`` too. Reading never fails
on bad metadata: a value that cannot be parsed is ignored (and the caller's or default value used).
"""
from __future__ import annotations

import json

PREFIX = "colorstroke."
INT_KEYS = ("hint_version", "hint_channels", "cross_attention_dim", "training_step", "lora_rank")
BOOL_KEYS = ("middle_block_only",)
JSON_OBJECT_KEYS = ("config", "fill")


def encode(values: dict) -> dict[str, str]:
    """Short names (or already prefixed keys) and any values -> the header's ``colorstroke.*`` strings.

    None values are left out; dicts/lists become JSON; booleans ``true``/``false``.
    """
    header = {}
    for name, value in values.items():
        if value is None:
            continue
        key = name if str(name).startswith(PREFIX) else PREFIX + str(name)
        if isinstance(value, bool):
            header[key] = "true" if value else "false"
        elif isinstance(value, (dict, list, tuple)):
            header[key] = json.dumps(value)
        else:
            header[key] = str(value)
    return header


def _parse(name: str, text: str):
    if name in INT_KEYS:
        return int(float(text))
    if name in BOOL_KEYS:
        return {"true": True, "false": False}[text.strip().lower()]
    if name in JSON_OBJECT_KEYS:
        value = json.loads(text)
        if not isinstance(value, dict):
            raise ValueError(f"{name} is not a JSON object")
        return value
    return text


def decode(header: dict | None) -> dict:
    """The ``colorstroke.*`` entries of a header as short names with typed values; bad values dropped."""
    values = {}
    if not isinstance(header, dict):
        return values
    for key, text in header.items():
        if not isinstance(key, str) or not key.startswith(PREFIX) or not isinstance(text, str):
            continue
        name = key[len(PREFIX):]
        try:
            values[name] = _parse(name, text)
        except (ValueError, KeyError, TypeError, OverflowError):
            continue
    return values

"""What a checkpoint is (layout, hint channels, base family, edge polarity) and whether this project can use it.

Works on tensor names and shapes only, so the ComfyUI and A1111/Forge sides can check a file they load
with their own loader, and ``inspect_checkpoint`` can check a .safetensors file from its header alone.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

from ._contract import (
    EDGE_POLARITIES,
    HINT_CHANNELS,
    HINT_FORMAT,
    HINT_VERSION,
    UNRECORDED_EDGE_POLARITY,
    resolve_polarity,
)
from .control_lora import MARKER
from .errors import CheckpointError
from .families import FAMILIES, TEXT_TIME_PREFIXES, check_family, family_name, family_of
from .keymap import LDM_PREFIX
from .metadata import decode

DIFFUSERS_HINT_KEY = "controlnet_cond_embedding.conv_in.weight"
LDM_HINT_KEY = "input_hint_block.0.weight"


@dataclass
class CheckpointInfo:
    """What ``inspect_state_dict`` found.

    kind: "controlnet" or a short description of what else the tensors are ("a LoRA", "a UNet", ...).
    layout: "diffusers", "ldm" or "control_lora" (None unless a ControlNet); lora_rank: a control-LoRA's largest
    rank (``colorstroke.lora_rank``, else its tensors'), None for a full ControlNet. whole_model: an ldm file that
    also holds the SD weights (lllyasviel's training code); only its ``control_model.*`` part is a ControlNet.
    edge_polarity: from the file's metadata, else the caller's, else ``UNRECORDED_EDGE_POLARITY``
    (black_on_white: the original colour-stroke model, the only one without our metadata);
    polarity_source says which ("metadata", "argument", "default"). fill: how training filled its strokes
    (``colorstroke.fill``: probability, gap, alpha), None when the file does not say (trained before the fill).
    """

    kind: str
    layout: str | None = None
    hint_channels: int | None = None
    cross_attention_dim: int | None = None
    family: str = "sd15"
    edge_polarity: str = UNRECORDED_EDGE_POLARITY
    polarity_source: str = "default"
    hint_format: str | None = None
    hint_version: int = HINT_VERSION
    training_step: int | None = None
    middle_block_only: bool = False
    lora_rank: int | None = None
    whole_model: bool = False
    fill: dict | None = None
    config: dict | None = field(default=None, repr=False)

    def as_metadata(self) -> dict:
        """The info as the plain dict ``load_checkpoint`` returns (without the config)."""
        values = asdict(self)
        values.pop("config")
        return values


def _shape(value) -> tuple[int, ...]:
    return tuple(value.shape) if hasattr(value, "shape") else tuple(value)


def _describe_other(keys: list[str]) -> str:
    """A short description of tensors that are not a ControlNet."""
    if not keys:
        return "an empty checkpoint (no tensors)"
    if any("lora" in k.lower() for k in keys):
        return "a LoRA"
    if any(k.startswith("model.diffusion_model.") for k in keys):
        return "a Stable Diffusion model checkpoint (UNet, VAE, text encoder)"
    if any(k.startswith("output_blocks.") for k in keys) or (
        any(k.startswith("up_blocks.") for k in keys) and "conv_out.weight" in keys
        and "time_embedding.linear_1.weight" in keys
    ):
        return "a UNet"
    if any(k.startswith(("encoder.down", "decoder.up", "first_stage_model.")) for k in keys):
        return "a VAE"
    if any(k.startswith(("text_model.", "cond_stage_model.")) for k in keys):
        return "a text encoder"
    return f"unrecognised tensors (first names: {', '.join(sorted(keys)[:3])})"


def inspect_state_dict(state_dict, metadata: dict | None = None, polarity: str | None = None) -> CheckpointInfo:
    """Describe a checkpoint from its tensors (name -> tensor or shape) and safetensors header metadata.

    Never raises on bad metadata: unparsable values are ignored. ``polarity`` (checked against the
    contract) is used when the metadata records none; without it, ``UNRECORDED_EDGE_POLARITY``.
    """
    keys = list(state_dict.keys())
    values = decode(metadata)
    recorded = values.get("edge_polarity")
    edge_polarity, source = resolve_polarity(recorded if recorded in EDGE_POLARITIES else None, polarity)
    if MARKER in state_dict and LDM_HINT_KEY in state_dict:
        layout, prefix, hint_key = "control_lora", "", LDM_HINT_KEY
    elif DIFFUSERS_HINT_KEY in state_dict:
        layout, prefix, hint_key = "diffusers", "", DIFFUSERS_HINT_KEY
    elif LDM_PREFIX + LDM_HINT_KEY in state_dict:
        layout, prefix, hint_key = "ldm", LDM_PREFIX, LDM_PREFIX + LDM_HINT_KEY
    elif LDM_HINT_KEY in state_dict:
        layout, prefix, hint_key = "ldm", "", LDM_HINT_KEY
    else:
        return CheckpointInfo(kind=_describe_other(keys))
    own = [k for k in keys if k.startswith(prefix)]
    # a control-LoRA has no base weights: its cross-attention keys' down matrices are rank x text width
    cross = next((_shape(state_dict[k])[1] for k in own if k.endswith(("attn2.to_k.weight", "attn2.to_k.down"))),
                 None)
    ranks = [_shape(state_dict[k])[0] for k in own if k.endswith(".down")] if layout == "control_lora" else []
    family = family_of(cross, any(k[len(prefix):].startswith(TEXT_TIME_PREFIXES) for k in own))
    return CheckpointInfo(
        kind="controlnet",
        layout=layout,
        hint_channels=_shape(state_dict[hint_key])[1],
        cross_attention_dim=cross,
        family=family,
        edge_polarity=edge_polarity,
        polarity_source=source,
        hint_format=values.get("hint_format"),
        hint_version=values.get("hint_version", HINT_VERSION),
        training_step=values.get("training_step"),
        middle_block_only=values.get("middle_block_only", False),
        lora_rank=values.get("lora_rank", max(ranks)) if ranks else None,
        whole_model=layout == "ldm" and prefix == LDM_PREFIX and len(own) < len(keys),
        fill=values.get("fill"),
        config=values.get("config"),
    )


def family_mismatch(found: str, wanted: str, source: str, wanted_source: str = "") -> str:
    """What to tell a person whose ``found``-family ControlNet ``source`` meets a ``wanted``-family base
    (``wanted_source``: how to name that base, when there is one; else a ``wanted`` one is asked for)."""
    base = (f"the checkpoint {wanted_source} is {family_name(wanted)}" if wanted_source
            else f"an {family_name(wanted)} one is needed here")
    if wanted not in FAMILIES:
        return (f"{source} is an {family_name(found)} ControlNet, but {base}, for which there is no Color Stroke "
                f"ControlNet: use this ControlNet with an {family_name(found)} checkpoint "
                f"({FAMILIES[found].checkpoints})")
    head = f"{source} is an {family_name(found)} ControlNet, but {base}: use an {family_name(wanted)} Color Stroke " \
           "ControlNet with it"
    if found not in FAMILIES:
        return f"{head} ({family_name(found)} has no Color Stroke ControlNet)"
    return f"{head}, or this ControlNet with an {family_name(found)} checkpoint ({FAMILIES[found].checkpoints})"


def check_family_fits(info: CheckpointInfo, source: str, family: str, base_name: str = "") -> None:
    """Raise CheckpointError unless ``info`` (a ControlNet) is of ``family`` and full size (its text width).
    base_name: the checkpoint the ControlNet would steer, when there is one (messages name it)."""
    if info.family != family:
        raise CheckpointError(family_mismatch(info.family, family, source, base_name))
    width = FAMILIES[family].cross_attention_dim
    if info.cross_attention_dim != width:
        if info.cross_attention_dim == 1280 and family == "sd15":
            reason = ("1280 is diffusers' default, used when a ControlNet is built without SD 1.5's config; ComfyUI "
                      "and A1111 do not recognise it: rebuild it from an SD 1.5 UNet (cross_attention_dim 768)")
        else:
            reason = f"{family_name(family)} has {width} (a tiny test or demo model is not {family_name(family)}-sized)"
        raise CheckpointError(f"{source} has cross-attention dim {info.cross_attention_dim}: {reason}")


def inspect_checkpoint(path, polarity: str | None = None) -> CheckpointInfo:
    """``inspect_state_dict`` of a file; a .safetensors file is read from its header only."""
    from pathlib import Path

    from .files import read_safetensors_header, read_tensors

    if Path(path).suffix.lower() == ".safetensors":
        shapes, metadata = read_safetensors_header(path)
        return inspect_state_dict(shapes, metadata, polarity)
    tensors, metadata = read_tensors(path)
    return inspect_state_dict(tensors, metadata, polarity)


def check_color_stroke(info: CheckpointInfo, source: str = "this checkpoint", family: str | None = "sd15",
                       hint_channels: int = HINT_CHANNELS,
                       standard_remedy: str = "use it as a standard ControlNet", base_name: str = "") -> CheckpointInfo:
    """Return ``info`` if it is a usable Color Stroke ControlNet, else raise CheckpointError saying why.

    family: the base family it must be made for (``families.FAMILIES``: its architecture and full-size text
    width); None accepts any family and size (tiny test models). hint_channels: the hint width expected (3 only
    when loading a standard ControlNet to widen it). standard_remedy: what to do with a 3-channel (standard)
    ControlNet, in the words of the host showing it. base_name: the checkpoint of ``family`` the ControlNet would
    steer (a family of ``families.OTHER_FAMILIES`` too: SD 2.x), named in a family mismatch.
    """
    check_family(family, others=True)
    if info.kind != "controlnet":
        raise CheckpointError(f"{source} is {info.kind}, not a ControlNet; choose a Color Stroke ControlNet file")
    if info.hint_channels == 3 and hint_channels != 3:
        raise CheckpointError(f"{source}: this is a 3-channel (RGB hint) {family_name(info.family)} ControlNet, such "
                              "as a Canny or lineart one, not a 5-channel Color Stroke ControlNet; "
                              f"{standard_remedy}")
    if info.hint_channels != hint_channels:
        raise CheckpointError(f"{source} takes a {info.hint_channels}-channel hint; a Color Stroke ControlNet takes "
                              f"{hint_channels} ([edge, R, G, B, A])")
    if family is not None:
        check_family_fits(info, source, family, base_name)
    if info.hint_format is not None and info.hint_format != HINT_FORMAT:
        raise CheckpointError(f"{source} was made for hint format {info.hint_format!r}, not {HINT_FORMAT!r}")
    if info.hint_version > HINT_VERSION:
        raise CheckpointError(f"{source} uses hint version {info.hint_version}, newer than this package's "
                              f"{HINT_VERSION}; update the Color Stroke ControlNet package")
    return info


def trained_with_fill(fill: dict | None) -> bool:
    """Whether a model saw filled strokes in training: its ``CheckpointInfo.fill`` records a probability above 0."""
    probability = (fill or {}).get("probability", 0)
    return isinstance(probability, (int, float)) and probability > 0


def fill_note(fill: dict | None, filled: bool, source: str = "the model") -> str | None:
    """What to tell a person whose hint is ``filled`` (or not) for a model whose training ``fill`` is this
    (``CheckpointInfo.fill``); None when the two agree. source: the model's name."""
    if filled and not trained_with_fill(fill):
        return (f"{source} was trained without filled strokes, so the fill between the lines is untested for it: "
                "if its colours come out wrong, turn fill off")
    if not filled and trained_with_fill(fill):
        return (f"{source} was trained with strokes filled between the lines; turn fill on for colours that hold "
                "to their areas")
    return None

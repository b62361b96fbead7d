"""Key names of the two ControlNet file layouts and the mapping between them.

``diffusers``: the names of ``diffusers.ControlNetModel.state_dict()`` (``down_blocks.*``,
``controlnet_cond_embedding.*``, ``controlnet_down_blocks.*``, ``controlnet_mid_block.*``).

``ldm``: the names of lllyasviel's original ControlNet (``cldm.ControlNet``), as ComfyUI,
sd-webui-controlnet and Forge keep them: ``control_model.`` + ``time_embed.*``, ``input_blocks.*``,
``middle_block.*``, ``zero_convs.N.0.*``, ``middle_block_out.0.*``, ``input_hint_block.{0,2,...}.*``, and for SDXL
``label_emb.0.{0,2}.*`` (diffusers' ``add_embedding.linear_{1,2}``).

The mapping is built from the structure alone (levels, layers per level, which levels have attention,
number of hint-embedding convs); a key is renamed by its longest mapped module prefix. Attention
(transformer) blocks keep their inner names in both layouts; resnets rename their parts.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

LDM_PREFIX = "control_model."

# diffusers ResnetBlock2D part -> ldm ResBlock part
_RESNET_PARTS = {
    "norm1": "in_layers.0",
    "conv1": "in_layers.2",
    "time_emb_proj": "emb_layers.1",
    "norm2": "out_layers.0",
    "conv2": "out_layers.3",
    "conv_shortcut": "skip_connection",
}


@dataclass(frozen=True)
class Structure:
    """What the key mapping depends on.

    levels: number of resolution levels (SD 1.5: 4); layers_per_block: resnets per level (SD 1.5: 2);
    attention: per level, whether it has cross-attention blocks (SD 1.5: True, True, True, False);
    hint_blocks: number of convs between the hint embedding's first and last conv (diffusers: 6).
    """

    levels: int
    layers_per_block: int
    attention: tuple[bool, ...]
    hint_blocks: int = 6


def _resnet(mapping: dict, diffusers: str, ldm: str) -> None:
    for part, ldm_part in _RESNET_PARTS.items():
        mapping[f"{diffusers}.{part}"] = f"{ldm}.{ldm_part}"


def module_map(structure: Structure) -> dict[str, str]:
    """diffusers module prefix -> ldm module prefix (without ``control_model.``), for every module."""
    mapping = {
        "conv_in": "input_blocks.0.0",
        "time_embedding.linear_1": "time_embed.0",
        "time_embedding.linear_2": "time_embed.2",
        "add_embedding.linear_1": "label_emb.0.0",  # SDXL's text_time embedding (absent elsewhere)
        "add_embedding.linear_2": "label_emb.0.2",
        "controlnet_cond_embedding.conv_in": "input_hint_block.0",
        "controlnet_cond_embedding.conv_out": f"input_hint_block.{2 * (structure.hint_blocks + 1)}",
        "controlnet_down_blocks.0": "zero_convs.0.0",
        "controlnet_mid_block": "middle_block_out.0",
        "mid_block.attentions.0": "middle_block.1",
    }
    for k in range(structure.hint_blocks):
        mapping[f"controlnet_cond_embedding.blocks.{k}"] = f"input_hint_block.{2 * (k + 1)}"
    _resnet(mapping, "mid_block.resnets.0", "middle_block.0")
    _resnet(mapping, "mid_block.resnets.1", "middle_block.2")
    index = 1  # ldm input block 0 is conv_in
    for level in range(structure.levels):
        for layer in range(structure.layers_per_block):
            _resnet(mapping, f"down_blocks.{level}.resnets.{layer}", f"input_blocks.{index}.0")
            if structure.attention[level]:
                mapping[f"down_blocks.{level}.attentions.{layer}"] = f"input_blocks.{index}.1"
            mapping[f"controlnet_down_blocks.{index}"] = f"zero_convs.{index}.0"
            index += 1
        if level < structure.levels - 1:
            mapping[f"down_blocks.{level}.downsamplers.0.conv"] = f"input_blocks.{index}.0.op"
            mapping[f"controlnet_down_blocks.{index}"] = f"zero_convs.{index}.0"
            index += 1
    return mapping


def _rename(keys, mapping: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """(old key -> new key, keys no mapped prefix covers), by longest module prefix."""
    renamed, unmapped = {}, []
    for key in keys:
        module = key
        while True:
            if module in mapping:
                renamed[key] = mapping[module] + key[len(module):]
                break
            if "." not in module:
                unmapped.append(key)
                break
            module = module.rsplit(".", 1)[0]
    return renamed, unmapped


def diffusers_to_ldm(keys, structure: Structure) -> tuple[dict[str, str], list[str]]:
    """Rename diffusers keys to ldm keys (with ``control_model.``): (old -> new, unmapped keys)."""
    renamed, unmapped = _rename(keys, module_map(structure))
    return {k: LDM_PREFIX + v for k, v in renamed.items()}, unmapped


def ldm_to_diffusers(keys, structure: Structure) -> tuple[dict[str, str], list[str]]:
    """Rename ldm keys (with or without ``control_model.``) to diffusers keys: (old -> new, unmapped)."""
    inverse = {v: k for k, v in module_map(structure).items()}
    stripped = {key[len(LDM_PREFIX):] if key.startswith(LDM_PREFIX) else key: key for key in keys}
    renamed, unmapped = _rename(stripped, inverse)
    return {stripped[k]: v for k, v in renamed.items()}, [stripped[k] for k in unmapped]


def structure_from_diffusers_keys(keys) -> Structure:
    """The mapping structure of a diffusers-layout ControlNet, read from its key names."""
    keys = list(keys)
    levels = 1 + max(int(m.group(1)) for k in keys if (m := re.match(r"down_blocks\.(\d+)\.", k)))
    layers = 1 + max(int(m.group(1)) for k in keys if (m := re.match(r"down_blocks\.0\.resnets\.(\d+)\.", k)))
    attention = tuple(any(k.startswith(f"down_blocks.{level}.attentions.") for k in keys) for level in range(levels))
    blocks = [int(m.group(1)) for k in keys if (m := re.match(r"controlnet_cond_embedding\.blocks\.(\d+)\.", k))]
    return Structure(levels, layers, attention, 1 + max(blocks) if blocks else 0)


def structure_from_ldm_keys(keys) -> Structure:
    """The mapping structure of an ldm-layout ControlNet (``control_model.`` optional), from its key names."""
    keys = [k[len(LDM_PREFIX):] if k.startswith(LDM_PREFIX) else k for k in keys]
    count = 1 + max(int(m.group(1)) for k in keys if (m := re.match(r"input_blocks\.(\d+)\.", k)))
    downsamplers = sorted({int(m.group(1)) for k in keys if (m := re.match(r"input_blocks\.(\d+)\.0\.op\.", k))})
    layers = downsamplers[0] - 1 if downsamplers else count - 1
    levels = len(downsamplers) + 1
    attention = tuple(
        any(k.startswith(f"input_blocks.{1 + level * (layers + 1)}.1.") for k in keys) for level in range(levels)
    )
    hint = sorted({int(m.group(1)) for k in keys if (m := re.match(r"input_hint_block\.(\d+)\.", k))})
    return Structure(levels, layers, attention, hint[-1] // 2 - 1 if hint else 0)

"""Random-weight models for the live WebUI check (``tests/live/README.md``): no download, nothing trained.

Writes into MODELS (a WebUI's ``models`` folder):

- ``Stable-diffusion/random_sd15.safetensors``: an SD 1.5 single file (original key layout, fp16) whose
  UNet, VAE and text encoder are diffusers / transformers models built from SD 1.5's configs. The keys
  are renamed with ComfyUI's own conversion tables (``comfy.utils.unet_to_diffusers``,
  ``comfy.diffusers_convert``), so put a ComfyUI checkout on PYTHONPATH (``$COMFYUI_DIR``);
- ``ControlNet/control_colorstroke_sd15.safetensors``: our ControlNet built from that UNet
  (``model.build_controlnet``), its zero convolutions given small random weights so that the hint visibly
  changes the image; it records white_on_black edges;
- ``ControlNet/control_v11p_sd15_canny.safetensors``: a standard 3-channel ControlNet, the wrong model for
  our preprocessor;
- with ``--sdxl``: ``Stable-diffusion/random_sdxl.safetensors``, an SDXL single file (fp16, 6.5 GiB: the UNet of
  ``model.families.SDXL_UNET_CONFIG``, CLIP ViT-L and OpenCLIP ViT-bigG text towers, the VAE; the text towers' names
  converted by ComfyUI's own SDXL saving code), and ``ControlNet/control_colorstroke_sdxl.safetensors``, our
  ControlNet built from that UNet as the SD 1.5 one is (fp16, 2.4 GiB): the pair must generate, and each host must
  refuse it beside the SD 1.5 checkpoint naming both families;
- always (alone with ``--control_lora_only``): ``ControlNet/control_colorstroke_sd15_control_lora_rank8.safetensors``,
  that ControlNet as a rank-8 control-LoRA whose differences are moved (random ``up``, std 0.01) so that a host must
  add them, and ``ControlNet/control_colorstroke_sd15_merged.safetensors``, the same model in full: on
  ``random_sd15`` (whose encoder the ControlNet copies, as a control-LoRA assumes) both must give the same image.

Run from the repository root:  PYTHONPATH=.:$COMFYUI_DIR python tests/live/make_models.py MODELS
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from safetensors.torch import save_file

from model import build_controlnet, save_checkpoint

UNET_CONFIG = dict(  # SD 1.5's UNet
    sample_size=64, in_channels=4, out_channels=4, down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
    up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3, block_out_channels=(320, 640, 1280, 1280),
    layers_per_block=2, cross_attention_dim=768, attention_head_dim=8,
)
# the same UNet as ComfyUI describes it, for its key table (transformer_depth_output is read from its end:
# the first three output blocks, at the lowest resolution, have no attention)
COMFY_UNET_CONFIG = dict(num_res_blocks=[2] * 4, channel_mult=[1, 2, 4, 4], transformer_depth=[1, 1, 1, 1, 1, 1, 0, 0],
                         transformer_depth_output=[1] * 9 + [0] * 3, transformer_depth_middle=1)
COMFY_SDXL_UNET_CONFIG = dict(num_res_blocks=[2] * 3, channel_mult=[1, 2, 4], transformer_depth=[0, 0, 2, 2, 10, 10],
                              transformer_depth_output=[0, 0, 0, 2, 2, 2, 10, 10, 10], transformer_depth_middle=10)
CLIP_G_CONFIG = dict(  # OpenCLIP ViT-bigG's text tower, SDXL's second text encoder
    vocab_size=49408, hidden_size=1280, intermediate_size=5120, projection_dim=1280, num_hidden_layers=32,
    num_attention_heads=20, max_position_embeddings=77, hidden_act="gelu",
)
VAE_CONFIG = dict(
    in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 4,
    up_block_types=("UpDecoderBlock2D",) * 4, block_out_channels=(128, 256, 512, 512), layers_per_block=2,
    latent_channels=4, sample_size=512,
)
CLIP_CONFIG = dict(  # the ViT-L/14 text tower of SD 1.5
    vocab_size=49408, hidden_size=768, intermediate_size=3072, projection_dim=768, num_hidden_layers=12,
    num_attention_heads=12, max_position_embeddings=77, hidden_act="quick_gelu",
)
ZERO_CONV_STD = 0.05  # the random weights given to the ControlNet's zero convolutions
# gain on the hint embedding's last convolution: 16 makes the strokes change the residuals by ~60 % of
# their mean size (edges ~25 %), so that stroke colours visibly change the image of a random model
HINT_GAIN = 16.0


def ldm_unet(unet, comfy_config=COMFY_UNET_CONFIG) -> dict:
    """A diffusers UNet's tensors under the original names (``model.diffusion_model.*``); ``comfy_config``: the
    UNet as ComfyUI describes it."""
    import comfy.utils

    names = comfy.utils.unet_to_diffusers(comfy_config)  # diffusers name -> original name
    state = unet.state_dict()
    missing = sorted(set(state) - set(names))
    if missing:
        raise RuntimeError(f"ComfyUI's table has no original name for {missing[:3]} (and {len(missing)} in all)")
    return {"model.diffusion_model." + names[key]: tensor for key, tensor in state.items()}


def ldm_vae(vae) -> dict:
    import comfy.diffusers_convert

    return {"first_stage_model." + key: tensor
            for key, tensor in comfy.diffusers_convert.convert_vae_state_dict(vae.state_dict()).items()}


def clip_names(text_encoder) -> dict:
    """A transformers CLIP text model's tensors under the names checkpoint files keep (``text_model.*``, and
    ``text_projection.weight``): transformers 5's ``CLIPTextModel`` leaves ``text_model.`` out of its own."""
    return {key if key.startswith(("text_model.", "text_projection.")) else "text_model." + key: tensor
            for key, tensor in text_encoder.state_dict().items()}


def ldm_text_encoder(text_encoder) -> dict:
    """SD 1.5 files keep the transformers names of the text encoder under ``cond_stage_model.transformer.``."""
    return {"cond_stage_model.transformer." + key: tensor for key, tensor in clip_names(text_encoder).items()}


def sdxl_files(models: Path, seed: int) -> list[Path]:
    """The random SDXL single file and our ControlNet built from its UNet (module docstring), built in fp16."""
    from comfy.cli_args import args

    args.cpu = True  # before comfy.model_management loads (through supported_models): no GPU is looked for
    import comfy.supported_models
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    from model.families import SDXL_UNET_CONFIG

    torch.manual_seed(seed)
    torch.set_default_dtype(torch.float16)  # 2.6 B UNet parameters: half the memory while they are made
    try:
        unet, vae = UNet2DConditionModel(**SDXL_UNET_CONFIG), AutoencoderKL(**VAE_CONFIG)
        clip_l, clip_g = CLIPTextModel(CLIPTextConfig(**CLIP_CONFIG)), CLIPTextModelWithProjection(
            CLIPTextConfig(**CLIP_G_CONFIG))
        controlnet = visible_controlnet(unet, 5, seed)
    finally:
        torch.set_default_dtype(torch.float32)
    text = {**{"clip_l.transformer." + k: v for k, v in clip_names(clip_l).items()},
            **{"clip_g.transformer." + k: v for k, v in clip_names(clip_g).items()}}
    sdxl = comfy.supported_models.SDXL(comfy.supported_models.SDXL.unet_config)
    checkpoint = {**ldm_unet(unet, COMFY_SDXL_UNET_CONFIG), **ldm_vae(vae),
                  **sdxl.process_clip_state_dict_for_saving(text)}
    path = models / "Stable-diffusion" / "random_sdxl.safetensors"
    save_file({key: tensor.to(torch.float16).contiguous() for key, tensor in checkpoint.items()}, str(path))
    ours = save_checkpoint(controlnet, models / "ControlNet" / "control_colorstroke_sdxl.safetensors", layout="ldm",
                           dtype="fp16", metadata={"edge_polarity": "white_on_black"})
    return [path, ours]


def visible_controlnet(unet, hint_channels: int, seed: int):
    """``build_controlnet`` whose hint visibly changes the image, every channel of it.

    Its output convolutions get small random weights instead of zeros; the hint embedding is drawn again
    with He-normal weights: with PyTorch's default initialisation each of its 8 convolutions shrinks the
    signal, and the hint would change the residuals by ~1e-5 of their size (strokes invisible).
    """
    controlnet = build_controlnet(unet, hint_channels=hint_channels)
    generator = torch.Generator().manual_seed(seed)
    embedding = controlnet.controlnet_cond_embedding
    with torch.no_grad():
        for conv in [embedding.conv_in, *embedding.blocks, embedding.conv_out]:
            fan_in = conv.weight[0].numel()
            gain = HINT_GAIN if conv is embedding.conv_out else 1.0
            conv.weight.copy_(torch.randn(conv.weight.shape, generator=generator) * gain * (2.0 / fan_in) ** 0.5)
            conv.bias.zero_()
        for conv in [*controlnet.controlnet_down_blocks, controlnet.controlnet_mid_block]:
            conv.weight.copy_(torch.randn(conv.weight.shape, generator=generator) * ZERO_CONV_STD)
    return controlnet


def sd15_files(models: Path, seed: int) -> list[Path]:
    """The random SD 1.5 single file, our ControlNet built from its UNet, and the 3-channel one (module docstring)."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(seed)
    unet, vae = UNet2DConditionModel(**UNET_CONFIG), AutoencoderKL(**VAE_CONFIG)
    text_encoder = CLIPTextModel(CLIPTextConfig(**CLIP_CONFIG))
    checkpoint = {**ldm_unet(unet), **ldm_vae(vae), **ldm_text_encoder(text_encoder)}
    sd_path = models / "Stable-diffusion" / "random_sd15.safetensors"
    save_file({key: tensor.to(torch.float16).contiguous() for key, tensor in checkpoint.items()}, str(sd_path))
    controlnets = models / "ControlNet"
    ours = save_checkpoint(visible_controlnet(unet, 5, seed), controlnets / "control_colorstroke_sd15.safetensors",
                           layout="ldm", dtype="fp16", metadata={"edge_polarity": "white_on_black"})
    canny = save_checkpoint(visible_controlnet(unet, 3, seed), controlnets / "control_v11p_sd15_canny.safetensors",
                            layout="ldm", dtype="fp16")
    return [sd_path, ours, canny]


CONTROL_LORA = "control_colorstroke_sd15_control_lora_rank8.safetensors"
CONTROL_LORA_MERGED = "control_colorstroke_sd15_merged.safetensors"


def control_lora_files(controlnets: Path) -> list[Path]:
    """CONTROL_LORA and CONTROL_LORA_MERGED beside control_colorstroke_sd15.safetensors (module docstring)."""
    from model import load_checkpoint
    from model.control_lora import add_low_rank, low_rank_deltas

    controlnet, metadata = load_checkpoint(controlnets / "control_colorstroke_sd15.safetensors", dtype=torch.float32)
    add_low_rank(controlnet, 8)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for delta in low_rank_deltas(controlnet).values():
            delta.up.copy_(torch.randn(delta.up.shape, generator=generator) * 0.01)
    recorded = {"edge_polarity": metadata["edge_polarity"]}
    return [save_checkpoint(controlnet, controlnets / CONTROL_LORA, layout="control_lora", dtype="fp16",
                            metadata=recorded),
            save_checkpoint(controlnet, controlnets / CONTROL_LORA_MERGED, layout="ldm", dtype="fp16",
                            metadata=recorded)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("models", type=Path, help="the WebUI's models folder")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sdxl", action="store_true", help="also write the SDXL checkpoint and its ControlNet")
    parser.add_argument("--sdxl_only", action="store_true", help="write only those (the SD 1.5 files exist)")
    parser.add_argument("--control_lora_only", action="store_true",
                        help="write only the control-LoRA pair (the SD 1.5 files exist)")
    args = parser.parse_args()
    started = time.time()
    for folder in ("Stable-diffusion", "ControlNet"):
        (args.models / folder).mkdir(parents=True, exist_ok=True)
    only = args.sdxl_only or args.control_lora_only
    written = [] if only else sd15_files(args.models, args.seed)
    if args.sdxl or args.sdxl_only:
        written += sdxl_files(args.models, args.seed)
    if not args.sdxl_only:
        written += control_lora_files(args.models / "ControlNet")
    for path in written:
        print(f"{path} ({path.stat().st_size / 2**20:.0f} MiB)")
    print(f"{time.time() - started:.0f} s")


if __name__ == "__main__":
    main()

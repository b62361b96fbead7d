"""model.inference: a drawing and strokes through a tiny SD pipeline made in code (no download)."""
import json

import numpy as np
import pytest
import torch

from model import CheckpointError, load_checkpoint, save_checkpoint
from model.inference import build_hint, colorize, load_base_pipeline, output_size
from preprocessors import BLACK_ON_WHITE, HintError
from tests import helpers

LETTERS = "abcdefghijklmnopqrstuvwxyz"


def _tokenizer(folder):
    """A CLIP tokenizer over single letters (merges none), written to ``folder``."""
    from transformers import CLIPTokenizer

    tokens = list(LETTERS) + [c + "</w>" for c in LETTERS] + ["<|startoftext|>", "<|endoftext|>"]
    (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(tokens)}), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")
    return CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=16)


@pytest.fixture
def tiny_parts(tmp_path):
    """unet, vae (8x downsampling), text_encoder (width 32), tokenizer, scheduler of a tiny SD 1.5 look-alike."""
    from diffusers import AutoencoderKL, DDIMScheduler
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(0)
    vae = AutoencoderKL(block_out_channels=(8, 8, 8, 8), down_block_types=("DownEncoderBlock2D",) * 4,
                        up_block_types=("UpDecoderBlock2D",) * 4, latent_channels=4, norm_num_groups=8,
                        layers_per_block=1, sample_size=64)
    text_encoder = CLIPTextModel(CLIPTextConfig(vocab_size=54, hidden_size=32, intermediate_size=37,
                                                num_attention_heads=4, num_hidden_layers=2, max_position_embeddings=16,
                                                bos_token_id=52, eos_token_id=53, pad_token_id=53))
    return {"unet": helpers.tiny_unet(), "vae": vae, "text_encoder": text_encoder,
            "tokenizer": _tokenizer(tmp_path),
            "scheduler": DDIMScheduler(beta_schedule="scaled_linear", steps_offset=1, clip_sample=False)}


def _drawing(height=72, width=52):
    image = np.full((height, width, 3), 255, np.uint8)
    image[10:60, 20:23] = 0
    image[30:33, 5:45] = 0
    return image


def _strokes(height=72, width=52):
    layer = np.zeros((height, width, 4), np.uint8)
    layer[12:40, 8:30] = (220, 40, 30, 255)
    return layer


def test_colorize_gives_an_image_of_the_drawing_size(tiny_parts, tiny_controlnet, tmp_path):
    path = save_checkpoint(tiny_controlnet, tmp_path / "cn.safetensors", metadata={"edge_polarity": BLACK_ON_WHITE})
    controlnet, _ = load_checkpoint(path, family=None)
    seen = []
    controlnet.register_forward_hook(lambda module, args, kwargs, out: seen.append(kwargs["controlnet_cond"]),
                                     with_kwargs=True)
    image = colorize(tiny_parts, controlnet, _drawing(), _strokes(), prompt="a red fox", steps=2, seed=3)
    assert image.size == (48, 72)  # width 52 rounded down to a multiple of 8
    hint = seen[0]
    assert hint.shape == (2, 5, 72, 48)  # classifier-free guidance: the hint twice, all 5 channels
    assert 0.0 <= float(hint.min()) and float(hint.max()) <= 1.0
    assert float(hint[0, 4].max()) == 1.0  # the stroke's alpha arrived
    assert float(hint[0, 0].mean()) > 0.5  # black-on-white edges, as the checkpoint records
    again = colorize(tiny_parts, controlnet, _drawing(), _strokes(), prompt="a red fox", steps=2, seed=3)
    assert np.array_equal(np.asarray(image), np.asarray(again))
    plain = colorize(tiny_parts, controlnet, _drawing(), None, prompt="a red fox", steps=2, seed=3)
    assert not np.array_equal(np.asarray(image), np.asarray(plain))  # the strokes change the picture


def test_stroke_guidance_gives_the_negative_side_the_drawing_without_strokes(tiny_parts, tiny_controlnet):
    seen = []
    tiny_controlnet.register_forward_hook(lambda module, args, kwargs, out: seen.append(kwargs["controlnet_cond"]),
                                          with_kwargs=True)
    guided = colorize(tiny_parts, tiny_controlnet, _drawing(), _strokes(), steps=2, guidance=3, seed=1,
                      stroke_guidance=True)
    negative, positive = seen[0]
    assert float(negative[1:].abs().max()) == 0.0 and float(positive[4].max()) == 1.0  # strokes on one side only
    assert torch.equal(negative[0], positive[0])  # the same edges on both
    seen.clear()
    plain = colorize(tiny_parts, tiny_controlnet, _drawing(), _strokes(), steps=2, guidance=3, seed=1)
    assert torch.equal(seen[0][0], seen[0][1]) and not np.array_equal(np.asarray(guided), np.asarray(plain))
    assert not tiny_controlnet._forward_pre_hooks  # the hook is gone after the call
    with pytest.raises(ValueError, match="set guidance above 1"):
        colorize(tiny_parts, tiny_controlnet, _drawing(), _strokes(), steps=1, guidance=1, stroke_guidance=True)


def test_build_hint_and_size_checks():
    hint = build_hint(_drawing(), _strokes(), size=(64, 48))
    assert hint.shape == (1, 5, 64, 48) and hint.dtype == torch.float32
    assert output_size(_drawing(), width=100) == (72, 96)
    with pytest.raises(HintError, match="at least 8x8"):
        output_size(np.zeros((5, 5)))


def test_missing_pipeline_parts_are_named(tiny_parts, tiny_controlnet):
    del tiny_parts["vae"]
    with pytest.raises(ValueError, match="lacks vae"):
        colorize(tiny_parts, tiny_controlnet, _drawing(), steps=1)


def test_load_base_pipeline_from_a_folder(tiny_parts, tmp_path):
    from diffusers import StableDiffusionPipeline

    StableDiffusionPipeline(**tiny_parts, safety_checker=None, feature_extractor=None,
                            requires_safety_checker=False).save_pretrained(tmp_path / "base")
    pipe = load_base_pipeline(tmp_path / "base")
    assert pipe.unet.config.cross_attention_dim == 32 and pipe.safety_checker is None
    with pytest.raises(Exception, match="does not exist"):
        load_base_pipeline(tmp_path / "absent.safetensors")
    (tmp_path / "one.safetensors").write_bytes(b"x")
    with pytest.raises(Exception, match="config="):
        load_base_pipeline(tmp_path / "one.safetensors")


def test_colorize_fills_as_the_model_was_trained_and_warns_when_it_was_not(tiny_parts, tiny_controlnet, tmp_path):
    drawing = np.full((72, 48, 3), 255, np.uint8)
    drawing[8:64, 6:42][[0, -1]] = 0  # a closed box: rows 8 and 63, columns 6 and 41
    drawing[8:64, [6, 41]] = 0
    strokes = np.zeros((72, 48, 4), np.uint8)
    strokes[30:36, 18:26] = (220, 40, 30, 255)  # a dab in the box
    seen = []
    for name, fill in (("filled", {"probability": 0.5, "gap": 6, "alpha": 0.5}), ("sparse", None)):
        path = save_checkpoint(tiny_controlnet, tmp_path / f"{name}.safetensors", metadata={"fill": fill})
        controlnet, info = load_checkpoint(path, family=None)
        assert info["fill"] == fill
        controlnet.register_forward_hook(lambda module, args, kwargs, out: seen.append(kwargs["controlnet_cond"]),
                                         with_kwargs=True)
        seen.clear()
        colorize(tiny_parts, controlnet, drawing, strokes, steps=1, seed=0)  # fill=None: as trained
        alpha = seen[0][0, 4]
        inside = alpha[20:50, 12:36]
        if fill:
            assert float(inside.min()) > 0.4 and float(alpha[2:6].max()) == 0.0  # the box is filled, not beyond
        else:
            assert float((inside > 0).float().mean()) < 0.2  # the strokes only
        if not fill:
            with pytest.warns(UserWarning, match="untested"):
                colorize(tiny_parts, controlnet, drawing, strokes, steps=1, seed=0, fill=True)


@pytest.fixture
def tiny_sdxl_parts(tmp_path):
    """The tiny SDXL-shaped base (``training.tiny_base.tiny_sdxl_components``) with a DDIM schedule."""
    from diffusers import DDIMScheduler

    from training.tiny_base import tiny_sdxl_components

    parts = tiny_sdxl_components(seed=0, tokenizer_dir=tmp_path / "tokenizer")
    parts["scheduler"] = DDIMScheduler.from_config(parts["scheduler"].config)
    return parts


def test_colorize_runs_an_sdxl_controlnet_on_an_sdxl_base_and_refuses_mixed_families(tiny_sdxl_parts, tiny_parts,
                                                                                    tiny_controlnet):
    from model import build_controlnet

    sdxl = helpers.randomise_outputs(build_controlnet(tiny_sdxl_parts["unet"]))
    seen = []
    sdxl.register_forward_hook(lambda module, args, kwargs, out: seen.append(kwargs), with_kwargs=True)
    image = colorize(tiny_sdxl_parts, sdxl, _drawing(64, 64), _strokes(64, 64), prompt="a fox", steps=2, seed=3)
    assert image.size == (64, 64)
    assert seen[0]["controlnet_cond"].shape == (2, 5, 64, 64)  # the 5-channel hint, both sides of the guidance
    assert seen[0]["added_cond_kwargs"]["time_ids"].shape == (2, 6)  # SDXL's size ids reach the ControlNet
    plain = colorize(tiny_sdxl_parts, sdxl, _drawing(64, 64), None, prompt="a fox", steps=2, seed=3)
    assert not np.array_equal(np.asarray(image), np.asarray(plain))  # the strokes change the picture
    with pytest.raises(Exception, match="the ControlNet is an SD 1.5 ControlNet, but the checkpoint given is SDXL"):
        colorize(tiny_sdxl_parts, tiny_controlnet, _drawing(64, 64), _strokes(64, 64), steps=1)
    with pytest.raises(Exception, match="the ControlNet is an SDXL ControlNet, but the checkpoint given is SD 1.5"):
        colorize(tiny_parts, sdxl, _drawing(64, 64), _strokes(64, 64), steps=1)
    del tiny_sdxl_parts["text_encoder_2"]
    with pytest.raises(ValueError, match="lacks text_encoder_2"):
        colorize(tiny_sdxl_parts, sdxl, _drawing(64, 64), steps=1)


def test_colorize_takes_a_control_lora_file_and_rebuilds_it_on_the_pipelines_unet(tiny_parts, tmp_path):
    from model import build_controlnet
    from model.control_lora import add_low_rank, low_rank_deltas

    controlnet = helpers.randomise_outputs(build_controlnet(tiny_parts["unet"]))
    add_low_rank(controlnet, 4)
    with torch.no_grad():
        for delta in low_rank_deltas(controlnet).values():
            delta.up.normal_(std=0.05)
    lora = save_checkpoint(controlnet, tmp_path / "cs_control_lora_rank4.safetensors", layout="control_lora",
                           metadata={"edge_polarity": BLACK_ON_WHITE})
    full = save_checkpoint(controlnet, tmp_path / "cs.safetensors", layout="ldm",
                           metadata={"edge_polarity": BLACK_ON_WHITE})
    with pytest.raises(CheckpointError, match="is a control-LoRA"):
        load_checkpoint(lora, family=None)  # a control-LoRA alone is no ControlNet: colorize needs its path
    from_lora = colorize(tiny_parts, lora, _drawing(), _strokes(), prompt="a red fox", steps=2, seed=3)
    from_full = colorize(tiny_parts, load_checkpoint(full, family=None)[0], _drawing(), _strokes(), prompt="a red fox",
                         steps=2, seed=3)
    difference = np.abs(np.asarray(from_lora, np.int16) - np.asarray(from_full, np.int16))
    assert difference.max() <= 1  # the same model (8-bit rounding aside)
    assert np.array_equal(np.asarray(colorize(tiny_parts, str(full), _drawing(), _strokes(), prompt="a red fox",
                                              steps=2, seed=3)), np.asarray(from_full))

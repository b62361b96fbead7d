"""The trainer on an SDXL-shaped base (tiny, made in code): the base read as SDXL, its text conditioning as diffusers'
SDXL pipeline makes it, the size ids of each sample's real crop, the step, an exact resume, the VAE's precision and
its NaN message, and ``--demo sdxl``."""
import math

import cv2
import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from model import CheckpointError, load_checkpoint
from tests.helpers import tiny_config
from training import checkpointing
from training.base_model import BaseModelError, load_base
from training.data.samples import resize_and_crop
from training.encoders import TextEmbedder
from training.loop import Trainer, vae_dtype
from training.train import main


@pytest.fixture(scope="module")
def tiny_sdxl_base(tmp_path_factory):
    from training.tiny_base import save_tiny_base

    return save_tiny_base(tmp_path_factory.mktemp("tiny_sdxl") / "base", family="sdxl")


def test_an_sdxl_folder_loads_as_sdxl_and_a_tiny_one_only_when_allowed(tiny_sdxl_base):
    with pytest.raises(BaseModelError, match="is not an SDXL base \\(cross-attention width 64; SDXL has 2048\\)"):
        load_base(tiny_sdxl_base)
    base = load_base(tiny_sdxl_base, allow_non_sd15=True)
    assert base.family == "sdxl" and base.text_encoder_2 is not None and len(base.text_encoders) == 2
    assert all(not p.requires_grad for m in base.frozen_modules for p in m.parameters())


def test_text_conditioning_equals_the_sdxl_pipelines(tiny_sdxl_base):
    from diffusers import StableDiffusionXLPipeline

    base = load_base(tiny_sdxl_base, allow_non_sd15=True)
    captions = ["a red fox", "", "a red fox", "line art of a house"]
    condition = TextEmbedder(base.text_encoders, "cpu", torch.float32, cache_size=4)(captions)
    pipe = StableDiffusionXLPipeline(**base.pipeline_parts(base.noise_scheduler), add_watermarker=False)
    hidden, _, pooled, _ = pipe.encode_prompt(captions, device="cpu", do_classifier_free_guidance=False)
    assert condition.hidden.shape == (4, 77, 64) and condition.pooled.shape == (4, 32)
    assert torch.allclose(condition.hidden, hidden, atol=1e-6) and torch.allclose(condition.pooled, pooled, atol=1e-6)
    again = TextEmbedder(base.text_encoders, "cpu", torch.float32, cache_size=4)
    again(captions)  # fills the cache
    cached = again(captions)
    assert torch.equal(cached.hidden, condition.hidden) and torch.equal(cached.pooled, condition.pooled)


def test_size_ids_are_the_original_size_and_the_crop_corner():
    picture = np.zeros((100, 60, 3), np.uint8)
    centre = resize_and_crop(picture, 30, None, "center", False)
    assert centre.pixels.shape == (30, 30, 3)
    assert centre.size_ids.tolist() == [100, 60, 10, 0, 30, 30]  # resized to 50x30, the middle 30 rows
    wide = np.zeros((40, 100, 3), np.uint8)
    wide[..., 0] = np.arange(100, dtype=np.uint8)[None] * 2  # every column its own value
    resized = cv2.resize(wide, (50, 20), interpolation=cv2.INTER_AREA)
    seen = set()
    for seed in range(20):
        cropped = resize_and_crop(wide, 20, np.random.default_rng(seed), "random", True)
        height, width, top, left, *target = cropped.size_ids.tolist()
        assert (height, width, top, target) == (40, 100, 0, [20, 20]) and 0 <= left <= 30
        # the corner is where the crop sits in the resized image as shown: mirrored when the crop was flipped
        flipped = cropped.pixels[0, 0, 0] > cropped.pixels[0, -1, 0]
        shown = resized[:, ::-1] if flipped else resized
        assert np.array_equal(cropped.pixels, shown[top:top + 20, left:left + 20])
        seen.add((left, bool(flipped)))
    assert len(seen) > 3


def test_vae_precision():
    assert vae_dtype("auto", torch.float16, "sdxl", own_vae_replaced=False) == torch.float32
    assert vae_dtype("auto", torch.float16, "sdxl", own_vae_replaced=True) == torch.float16
    assert vae_dtype("auto", torch.bfloat16, "sdxl", own_vae_replaced=False) == torch.bfloat16
    assert vae_dtype("auto", torch.float16, "sd15", own_vae_replaced=False) == torch.float16
    assert vae_dtype("fp32", torch.bfloat16, "sd15", own_vae_replaced=False) == torch.float32
    assert vae_dtype("precision", torch.float16, "sdxl", own_vae_replaced=False) == torch.float16


def test_the_sdxl_step_trains_and_a_resumed_run_ends_with_the_same_weights(tiny_sdxl_base, image_folder, tmp_path):
    seen = []
    real = Trainer.loss

    def recording(self, batch):
        seen.append(batch["size_ids"].clone())
        return real(self, batch)

    common = dict(max_train_steps=4, checkpointing_steps=2, crop="random", random_flip=True, resolution=64)
    trainer = Trainer(tiny_config(tiny_sdxl_base, image_folder, tmp_path / "a", **common))
    trainer.loss = recording.__get__(trainer)
    straight = trainer.run()
    assert straight.family == "sdxl" and all(math.isfinite(x) for x in straight.losses)
    assert all(ids.shape == (2, 6) and (ids[:, 4:] == 64).all() for ids in seen)
    assert len({tuple(ids[:, 2:4].flatten().tolist()) for ids in seen}) > 1  # the random crops' corners
    model, metadata = load_checkpoint(straight.export_path, family=None)
    assert metadata["family"] == "sdxl" and model.config.addition_embed_type == "text_time"
    checkpoint = checkpointing.list_checkpoints(tmp_path / "a")[0]
    resumed = Trainer(tiny_config(tiny_sdxl_base, image_folder, tmp_path / "a", resume_from_checkpoint=str(checkpoint),
                                  **common)).run()
    assert resumed.losses == straight.losses[2:]
    a, b = load_file(str(straight.export_path)), load_file(str(resumed.export_path))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_vae_that_overflows_stops_the_run_saying_what_to_do(tiny_sdxl_base, image_folder, tmp_path, monkeypatch,
                                                              capsys):
    from diffusers import AutoencoderKL

    real = AutoencoderKL.encode

    def overflowing(self, pixels, *args, **kwargs):
        output = real(self, pixels, *args, **kwargs)
        output.latent_dist.parameters.fill_(float("nan"))
        return output

    monkeypatch.setattr(AutoencoderKL, "encode", overflowing)
    code = main(["--base_model", str(tiny_sdxl_base), "--allow_non_sd15", "--data", str(image_folder), "--output_dir",
                 str(tmp_path / "run"), "--resolution", "64", "--max_train_steps", "2", "--num_workers", "0",
                 "--report_to", "none", "--validation_steps", "0"])
    err = capsys.readouterr().err
    assert code == 1 and "NaN/inf latents" in err and "--vae_dtype fp32" in err and "--vae" in err


def test_demo_sdxl_writes_a_file_loaded_as_sdxl_and_refused_as_sd15(tmp_path, capsys):
    code = main(["--demo", "sdxl", "--output_dir", str(tmp_path / "demo"), "--max_train_steps", "2",
                 "--checkpointing_steps", "2", "--validation_inference_steps", "2", "--report_to", "none"])
    out = capsys.readouterr().out
    assert code == 0, out
    export = tmp_path / "demo" / "demo_tiny_colorstroke_not_sdxl.safetensors"
    assert export.is_file() and "SDXL-shaped" in out and ", SDXL (" in out  # the summary names the family
    assert load_checkpoint(export, family=None)[1]["base_family"] == "sdxl"
    with pytest.raises(CheckpointError, match="is an SDXL ControlNet, but an SD 1.5 one is needed"):
        load_checkpoint(export)
    with pytest.raises(CheckpointError, match="SDXL has 2048 \\(a tiny test or demo model is not SDXL-sized\\)"):
        load_checkpoint(export, family="sdxl")


def test_a_3_channel_sdxl_controlnet_is_widened_and_trained(tiny_sdxl_base, image_folder, tmp_path):
    from model import build_controlnet, save_checkpoint
    from training.tiny_base import tiny_sdxl_unet

    canny = save_checkpoint(build_controlnet(tiny_sdxl_unet(), hint_channels=3), tmp_path / "canny_sdxl.safetensors",
                            layout="ldm")
    result = Trainer(tiny_config(tiny_sdxl_base, image_folder, tmp_path / "run", resolution=64, max_train_steps=2,
                                 controlnet_init=str(canny))).run()
    model, metadata = load_checkpoint(result.export_path, family=None)
    assert model.controlnet_cond_embedding.conv_in.in_channels == 5
    assert (metadata["family"], metadata["edge_polarity"]) == ("sdxl", "white_on_black")

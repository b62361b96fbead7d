"""Training modes and pieces: middle block only, starting from a 3-channel ControlNet, Canny on the
accelerator, 8-bit Adam's clear error, and the validation metrics."""
import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from model import build_controlnet, save_checkpoint
from preprocessors import make_hint
from training.base_model import load_base
from training.data import FolderSource, SampleSpec, TrainDataset, collate
from training.loop import Trainer, TrainingError
from training.validation import edge_f1, make_grid, stroke_colour_error, ValidationSample
from tests.train_fixtures import image_folder, tiny_base, tiny_config  # noqa: F401 (fixtures)


def test_middle_block_only_leaves_down_residuals_zero(tiny_base, image_folder, tmp_path):
    config = tiny_config(tiny_base, image_folder, tmp_path / "run", max_train_steps=2, middle_block_only=True,
                         export_layout="diffusers", learning_rate=1e-3)
    result = Trainer(config).run()
    tensors = load_file(str(result.export_path))
    down = [v for k, v in tensors.items() if k.startswith("controlnet_down_blocks")]
    assert down and all(torch.count_nonzero(v) == 0 for v in down)
    assert torch.count_nonzero(tensors["controlnet_mid_block.weight"]) > 0  # the middle residual did train


def test_start_from_a_three_channel_controlnet(tiny_base, image_folder, tmp_path):
    unet = load_base(tiny_base, allow_non_sd15=True).unet
    save_checkpoint(build_controlnet(unet, hint_channels=3), tmp_path / "canny.safetensors")
    config = tiny_config(tiny_base, image_folder, tmp_path / "run", max_train_steps=1,
                         controlnet_init=str(tmp_path / "canny.safetensors"))
    trainer = Trainer(config)
    result = trainer.run()
    assert trainer.controlnet.controlnet_cond_embedding.conv_in.in_channels == 5 and result.step == 1


def test_canny_on_the_accelerator_matches_the_worker_hint(image_folder):
    source = FolderSource(image_folder)
    worker = TrainDataset(source, SampleSpec(resolution=32, seed=3))
    split = TrainDataset(source, SampleSpec(resolution=32, seed=3, hint_on_gpu=True))
    keys = [(0, i) for i in range(4)]
    expected = collate([worker[k] for k in keys])["hint"]
    batch = collate([split[k] for k in keys])
    trainer = Trainer.__new__(Trainer)  # only .hint() is used: it needs the device and the polarity
    trainer.accelerator = type("A", (), {"device": torch.device("cpu")})()
    trainer.config = type("C", (), {"polarity": "white_on_black"})()
    got = trainer.hint(batch)
    assert torch.equal(got[:, 1:], expected[:, 1:])  # strokes: the same draws
    agree = (got[:, 0] == expected[:, 0]).float().mean()
    assert agree > 0.97  # Canny: canny_batch vs OpenCV


def test_8bit_adam_without_bitsandbytes_says_what_to_install(tiny_base, image_folder, tmp_path):
    pytest.importorskip("torch")
    try:
        import bitsandbytes  # noqa: F401
        pytest.skip("bitsandbytes is installed")
    except ImportError:
        pass
    config = tiny_config(tiny_base, image_folder, tmp_path / "run", use_8bit_adam=True)
    with pytest.raises(TrainingError, match="pip install bitsandbytes"):
        Trainer(config).run()


def test_validation_metrics_and_grid():
    edges = np.zeros((32, 32), np.float32)
    edges[8:24, 16] = 1.0
    strokes = np.zeros((32, 32, 4), np.float32)
    strokes[2:6, 2:6] = (0.8, 0.2, 0.1, 1.0)
    hint = make_hint(edges, strokes)
    result = np.full((32, 32, 3), 255, np.uint8)
    result[2:6, 2:6] = (204, 51, 25)
    assert stroke_colour_error(result, hint) < 1.0
    result[2:6, 2:6] = (0, 0, 0)
    assert stroke_colour_error(result, hint) > 200
    drawn = np.full((32, 32, 3), 255, np.uint8)
    drawn[8:24, 15:18] = 0  # a dark bar: Canny finds its sides within 2 px of the edge line
    assert edge_f1(drawn, hint) > 0.6
    assert edge_f1(np.full((32, 32, 3), 255, np.uint8), hint) == 0.0
    grid = make_grid([ValidationSample(hint, "p", "n")], result[None], "white_on_black")
    assert grid.shape == (32, 96, 3)

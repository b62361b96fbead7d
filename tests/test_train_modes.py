"""Training modes and pieces: middle block only, starting from a 3-channel ControlNet, Canny on the
accelerator, 8-bit Adam's clear error, and the validation metrics."""
import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from model import build_controlnet, save_checkpoint
from preprocessors import canny, make_hint
from tests.helpers import tiny_config
from training.base_model import load_base
from training.config import ConfigError
from training.data import FolderSource, SampleSpec, TrainDataset, collate
from training.loop import Trainer, TrainingError
from training.metrics import edge_f1, stroke_colour_error
from training.validation import ValidationSample, make_grid, run_validation


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
    assert trainer.metadata()["edge_polarity"] == "white_on_black"  # a Canny ControlNet sees white edges on black


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
    assert edge_f1(canny(drawn), hint[0], tolerance=2) > 0.6
    assert edge_f1(canny(drawn), hint[0], tolerance=0) < 0.1, "its sides are beside the line, not on it"
    assert edge_f1(canny(np.full((32, 32, 3), 255, np.uint8)), hint[0], tolerance=2) == 0.0
    assert edge_f1(np.zeros((8, 8)), np.zeros((8, 8)), tolerance=1) == 1.0, "nothing to find, nothing found"
    grid = make_grid([ValidationSample(hint, "p", "n")], result[None])
    assert grid.shape == (32, 96, 3)
    assert (grid[8:24, 16] == 0).all() and grid[0, 0].min() == 255, "the drawing: dark lines on white"


def edges_reaching(controlnet, action):
    """The mean of the edge channel of each hint ``controlnet`` is called with while ``action()`` runs."""
    seen = []
    handle = controlnet.register_forward_hook(
        lambda module, args, kwargs, out: seen.append(float(kwargs["controlnet_cond"][:, 0].mean())), with_kwargs=True)
    try:
        action()
    finally:
        handle.remove()
    return seen


@pytest.mark.parametrize("hint_on_gpu", [False, True])
def test_a_black_on_white_run_hands_its_controlnet_black_on_white_edges(tiny_base, image_folder, tmp_path,
                                                                         hint_on_gpu):
    """The library builds white-on-black hints; the loss and validation turn them into the run's polarity."""
    config = tiny_config(tiny_base, image_folder, tmp_path / "run", polarity="black_on_white", hint_on_gpu=hint_on_gpu,
                         fill_probability=0.0 if hint_on_gpu else 0.5)
    trainer = Trainer(config)
    trainer._setup()
    batch = next(iter(trainer._loader()))
    assert float(trainer.hint(batch)[:, 0].mean()) < 0.5, "built white on black: edges are the few pixels"
    with torch.no_grad():
        seen = edges_reaching(trainer.controlnet, lambda: trainer.loss(batch))
    assert seen and min(seen) > 0.5, "the loss hands the ControlNet black-on-white edges"
    results = {}
    seen = edges_reaching(trainer.controlnet, lambda: results.update(run_validation(
        trainer.controlnet, trainer.base, trainer.validation, trainer.config, 0, "cpu", trainer.accelerator.autocast)))
    assert seen and min(seen) > 0.5, "validation generates with black-on-white edges too"
    assert 0.0 <= results["edge_f1"] <= 1.0 and trainer.validation[0].hint[0].mean() < 0.5


def controlnet_file(tiny_base, path, hint_channels=5, polarity=None):
    """A tiny ControlNet for the tiny base at ``path``: recording ``polarity``, or no metadata at all when None."""
    from safetensors.torch import save_file

    from model import export_state_dict

    controlnet = build_controlnet(load_base(tiny_base, allow_non_sd15=True).unet, hint_channels=hint_channels)
    if polarity is None:
        save_file(export_state_dict(controlnet), str(path))  # as files from elsewhere: no colorstroke.* keys
    else:
        save_checkpoint(controlnet, path, metadata={"edge_polarity": polarity})
    return str(path)


def test_controlnet_init_polarity_is_adopted_unless_given(tiny_base, image_folder, tmp_path):
    from training import controlnet as trained_controlnet

    init = controlnet_file(tiny_base, tmp_path / "ours.safetensors", polarity="black_on_white")
    config = tiny_config(tiny_base, image_folder, tmp_path / "run", controlnet_init=init)
    trainer = Trainer(config)
    trainer._setup()
    assert trainer.config.polarity == "black_on_white"
    assert trainer.metadata()["edge_polarity"] == "black_on_white"
    assert "edge polarity: black_on_white (recorded in --controlnet_init" in trainer.summary()
    assert config.polarity is None  # the caller's config is left as it was
    unet = trainer.base.unet
    same = tiny_config(tiny_base, image_folder, tmp_path / "run", controlnet_init=init, polarity="black_on_white")
    assert trained_controlnet.build(unet, same)[1] == "black_on_white"
    flipped = tiny_config(tiny_base, image_folder, tmp_path / "run", controlnet_init=init, polarity="white_on_black")
    with pytest.raises(ConfigError, match="--polarity white_on_black contradicts .*black_on_white"):
        trained_controlnet.build(unet, flipped)


def test_controlnet_init_without_recorded_polarity_needs_one(tiny_base, image_folder, tmp_path):
    from training import controlnet as trained_controlnet

    init = controlnet_file(tiny_base, tmp_path / "bare.safetensors")
    unet = load_base(tiny_base, allow_non_sd15=True).unet
    with pytest.raises(ConfigError, match="records no edge polarity.*pass --polarity black_on_white"):
        trained_controlnet.build(unet, tiny_config(tiny_base, image_folder, tmp_path / "run", controlnet_init=init))
    given = tiny_config(tiny_base, image_folder, tmp_path / "run", controlnet_init=init, polarity="black_on_white")
    assert (trained_controlnet.build(unet, given)[1:]
            == ("black_on_white", "--polarity (--controlnet_init records none)"))


def test_widened_canny_controlnet_stays_white_on_black(tiny_base, image_folder, tmp_path):
    from training import controlnet as trained_controlnet

    init = controlnet_file(tiny_base, tmp_path / "canny.safetensors", hint_channels=3)
    unet = load_base(tiny_base, allow_non_sd15=True).unet
    _, polarity, source = trained_controlnet.build(unet,
                                       tiny_config(tiny_base, image_folder, tmp_path / "run", controlnet_init=init))
    assert polarity == "white_on_black" and "3-channel" in source
    flipped = tiny_config(tiny_base, image_folder, tmp_path / "run", controlnet_init=init, polarity="black_on_white")
    with pytest.raises(ConfigError, match="--polarity black_on_white contradicts the widened 3-channel ControlNet"):
        trained_controlnet.build(unet, flipped)


def test_summary_names_the_precision_and_where_it_came_from(tiny_base, image_folder, tmp_path, monkeypatch):
    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", "no")  # as accelerate launch sets it (no: like the other tests)
    trainer = Trainer(tiny_config(tiny_base, image_folder, tmp_path / "run", mixed_precision=None))
    trainer._setup()
    assert trainer.weight_dtype == torch.float32
    assert "precision no (accelerate launch/config (ACCELERATE_MIXED_PRECISION))" in trainer.summary()
    assert "edge polarity: white_on_black (default)" in trainer.summary()


def test_validation_stroke_layer_of_another_size_is_stretched_to_the_drawing(tmp_path):
    from PIL import Image

    from training.validation import user_samples

    drawing = np.full((64, 96, 3), 255, np.uint8)  # height 64, width 96: resized to 32 x 48, cut at columns 8..40
    drawing[:, 24:26] = 0  # a line at drawing column 24: column 4 of the hint
    Image.fromarray(drawing).save(tmp_path / "a.png")
    layer = np.zeros((48, 48, 4), np.uint8)  # square: stretched to 64 x 96, its column 12 lands on the line
    layer[:, :12] = (200, 40, 10, 255)
    Image.fromarray(layer).save(tmp_path / "a.strokes.png")
    hint = user_samples(tmp_path, 32)[0].hint
    alpha = hint[4].mean(axis=0)
    assert (alpha[:3] > 0.9).all() and (alpha[6:] < 0.01).all()  # strokes end where the line is
    edge_columns = np.nonzero(hint[0].max(axis=0) > 0.5)[0]
    assert edge_columns.size and 2 <= edge_columns.min() and edge_columns.max() <= 6
    assert np.allclose(hint[1, :, 0] / hint[4, :, 0], 200 / 255, atol=0.01)  # colour kept, premultiplied once
    assert (hint[1:4] <= hint[4] + 1e-6).all()


def test_recommended_inference_thresholds():
    from preprocessors import EdgeParams
    from training.validation import recommended_canny

    assert recommended_canny(EdgeParams()) == (100.0, 200.0)
    assert recommended_canny(EdgeParams.fixed(80, 240)) == (80.0, 240.0)
    assert recommended_canny(EdgeParams.fixed(70, 200)) == (70.0, 200.0)
    assert recommended_canny(EdgeParams(low_min=10, low_max=30, ratio_min=3, ratio_max=4)) == (30.0, 90.0)

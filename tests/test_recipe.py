"""The training recipe's parts: timestep sampling, loss weights, learning-rate groups, stroke data, phases."""
import json

import numpy as np
import pytest
import torch
from diffusers import DDPMScheduler

from model import load_checkpoint
from preprocessors import StrokeParams, random_strokes, training_hint
from tests.helpers import tiny_config
from training import recipe
from training.config import ConfigError
from training.data.samples import SampleSpec
from training.loop import Trainer
from training.phases import check_resume, shaping_options


def draw(kind, uniform_prob=0.0, count=20000):
    return recipe.sample_timesteps(kind, uniform_prob, count, 1000, torch.Generator().manual_seed(0), "cpu")


def test_timestep_samplings_cover_their_ranges():
    uniform, cubic, high = draw("uniform"), draw("cubic"), draw("high")
    for t in (uniform, cubic, high):
        assert t.dtype == torch.int64 and t.min() >= 0 and t.max() <= 999
    assert abs(uniform.float().mean() - 499.5) < 10
    assert abs(cubic.float().mean() - 750) < 10  # E[1 - u^3] = 3/4: more high-noise steps
    assert high.min() >= 500 and abs(high.float().mean() - 749.5) < 10
    assert torch.equal(draw("cubic", uniform_prob=1.0), uniform)  # all drawn uniformly, from the same u
    mixed = draw("high", uniform_prob=0.5)
    assert 0.2 < (mixed < 500).float().mean() < 0.3  # half uniform, of which half lands below T/2
    with pytest.raises(ValueError, match="timestep sampling"):
        draw("late")


def test_min_snr_weights_flatten_only_the_low_noise_steps():
    scheduler = DDPMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012)
    t = torch.tensor([0, 100, 500, 999])
    ratio = recipe.snr(scheduler.alphas_cumprod, t)
    assert ratio[0] > ratio[1] > 5 > 1 > ratio[2] > ratio[3]
    eps = recipe.min_snr_weights(scheduler.alphas_cumprod, t, 5.0, "epsilon")
    assert torch.allclose(eps[:2], 5.0 / ratio[:2]) and torch.allclose(eps[2:], torch.ones(2))
    v = recipe.min_snr_weights(scheduler.alphas_cumprod, t, 5.0, "v_prediction")
    assert torch.allclose(v, torch.minimum(ratio, torch.tensor(5.0)) / (ratio + 1))
    # the reason for the recipe: a colour error in x0 costs SNR(t) times as much in the epsilon loss
    assert recipe.snr(scheduler.alphas_cumprod, torch.tensor([250])) / ratio[3] > 30


def test_the_x0_floor_lifts_only_the_high_noise_steps():
    scheduler = DDPMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012)
    t = torch.tensor([0, 250, 750, 999])
    ratio = recipe.snr(scheduler.alphas_cumprod, t)
    weights = recipe.x0_floor_weights(scheduler.alphas_cumprod, t, 1.0, "epsilon")
    assert torch.allclose(weights[:2], torch.ones(2))  # SNR >= 1: the plain epsilon loss
    assert torch.allclose(weights[2:] * ratio[2:], torch.ones(2))  # an x0 error now costs 1 at high noise too
    v = recipe.x0_floor_weights(scheduler.alphas_cumprod, t, 2.0, "v_prediction")
    assert torch.allclose(v * (ratio + 1), torch.clamp(ratio + 1, min=2.0))
    off = recipe.PhaseRecipe(scheduler.alphas_cumprod, 0.0, 0.0, "epsilon", "cubic", 0.0)
    assert not off.active and off.weights(t) is None
    both = recipe.PhaseRecipe(scheduler.alphas_cumprod, 5.0, 1.0, "epsilon", "cubic", 0.25)
    raw = weights * recipe.min_snr_weights(scheduler.alphas_cumprod, t, 5.0, "epsilon")
    assert torch.allclose(both.weights(t), raw / both.mean)  # the same shape over timesteps ...
    drawn = recipe.sample_timesteps("cubic", 0.25, 200000, 1000, torch.Generator().manual_seed(1), "cpu")
    assert abs(float(both.weights(drawn).mean()) - 1.0) < 0.02  # ... scaled to mean 1 under the run's sampling


def test_stroke_pixel_weights_mark_the_latent_pixels_a_thin_stroke_touches():
    hint = torch.zeros(1, 5, 32, 32)
    hint[0, 4, 9, 3:20] = 1.0  # one-pixel line in latent row 1 (pixels 8-15)
    weights = recipe.stroke_pixel_weights(hint, (4, 4), 3.0)
    assert weights.shape == (1, 1, 4, 4)
    assert torch.equal(weights[0, 0, 1, :3], torch.full((3,), 4.0)) and weights[0, 0, 1, 3] == 1.0
    assert (weights[0, 0, [0, 2, 3]] == 1.0).all()


def test_weighted_mse_moves_weight_between_pixels_without_rescaling():
    prediction, target = torch.randn(2, 4, 4, 4), torch.randn(2, 4, 4, 4)
    plain = torch.nn.functional.mse_loss(prediction, target)
    assert torch.allclose(recipe.weighted_mse(prediction, target, None, None), plain)
    assert torch.allclose(recipe.weighted_mse(prediction, target, None, torch.full((2, 1, 4, 4), 7.0)), plain)
    error_on_one_pixel = torch.zeros(1, 4, 4, 4)
    error_on_one_pixel[0, :, 0, 0] = 1.0
    marked = torch.ones(1, 1, 4, 4)
    marked[0, 0, 0, 0] = 5.0
    assert recipe.weighted_mse(error_on_one_pixel, torch.zeros_like(error_on_one_pixel), None, marked) > \
        recipe.weighted_mse(error_on_one_pixel, torch.zeros_like(error_on_one_pixel), None, None)
    per_sample = recipe.weighted_mse(prediction, target, torch.tensor([1.0, 0.0]), None)
    assert torch.allclose(per_sample, ((prediction[0] - target[0]) ** 2).mean() / 2)


def test_the_area_colour_loss_weighs_each_area_alike_and_only_its_mean():
    areas = torch.zeros(2, 8, 8, dtype=torch.int32)  # pixels at twice the latent size
    areas[0, :, :6] = 1  # a big area: 12 of 16 latent pixels
    areas[0, 6:, 6:] = 2  # a small one: 1 latent pixel
    target = torch.zeros(2, 4, 4, 4)
    biased = target.clone()
    biased[0, :, :, :3] = 1.0  # area 1 off by 1 in every channel ...
    biased[0, :, 3, 3] = 1.0  # ... and area 2 too
    assert torch.isclose(recipe.area_colour_error(biased, target, areas, None), torch.tensor(0.5))  # sample 2: none
    small_only = target.clone()
    small_only[0, :, 3, 3] = 1.0
    assert torch.isclose(recipe.area_colour_error(small_only, target, areas, None), torch.tensor(0.25))  # (0 + 1)/2/2
    assert recipe.weighted_mse(small_only, target, None, None) < 0.04  # the plain loss barely sees it
    # noise of mean 0 over each area costs nothing: only the area's mean colour counts
    zero_mean = target.clone()
    zero_mean[0, :, :, 0], zero_mean[0, :, :, 1] = 1.0, -1.0
    assert recipe.area_colour_error(zero_mean, target, areas, None) == 0
    # a latent pixel shared by two areas counts in each by its share
    halves = torch.zeros(1, 2, 2, dtype=torch.int32)
    halves[0, :, 0] = 1
    assert torch.isclose(recipe.area_colour_error(torch.ones(1, 4, 1, 1), torch.zeros(1, 4, 1, 1), halves, None),
                         torch.tensor(1.0))  # one area, half the pixel, mean error 1
    weights = torch.tensor([3.0, 1.0])
    assert torch.isclose(recipe.area_colour_error(biased, target, areas, weights), torch.tensor(1.5))
    assert recipe.area_colour_error(biased, target, torch.zeros_like(areas), None) == 0
    with pytest.raises(ValueError, match="whole multiple"):
        recipe.area_colour_error(biased, target, areas[:, :6], None)


def test_new_parts_get_their_own_learning_rate(tiny_controlnet):
    groups = recipe.param_groups(tiny_controlnet, 1e-4, 10.0)
    assert [g["lr"] for g in groups] == [1e-4, pytest.approx(1e-3)]
    names = {id(p): n for n, p in tiny_controlnet.named_parameters()}
    new = {names[id(p)].split(".")[0] for p in groups[1]["params"]}
    assert new == {"controlnet_cond_embedding", "controlnet_down_blocks", "controlnet_mid_block"}
    assert not any(names[id(p)].startswith(recipe.NEW_PARTS) for p in groups[0]["params"])
    assert sum(len(g["params"]) for g in groups) == len(list(tiny_controlnet.parameters()))


@pytest.fixture
def tiny_controlnet():
    from diffusers import ControlNetModel

    return ControlNetModel(in_channels=4, block_out_channels=(8, 16),
                           down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                           layers_per_block=1, cross_attention_dim=8, attention_head_dim=2, norm_num_groups=4,
                           conditioning_channels=5, conditioning_embedding_out_channels=(4, 4, 4, 4))


def test_region_strokes_take_the_colour_of_the_area_between_the_lines():
    from benchmarks.toyworld.world import sample

    for seed in range(4):
        truth = sample(seed, 128)
        layer = random_strokes(truth.image, np.random.default_rng(seed), StrokeParams(
            colour="region", count_min=8, count_max=8, length_min=40, length_max=120, blur_prob=0.0))
        on = layer[..., 3] > 0
        regions = truth.regions[on]
        inside = regions >= 0
        assert on.sum() > 100 and (~inside).mean() < 0.05  # strokes stop at the lines
        painted = np.round(layer[on][inside, :3] * 255)
        close = (np.abs(painted - truth.colours[regions[inside]]) <= 8).all(axis=1)  # outline pixels darken a mean
        assert close.mean() > 0.95


def test_lit_strokes_take_the_colour_where_the_light_falls_fully():
    """A shaded area (a ramp from 40 % to full light over one base colour) beside another: ``lit`` strokes in it take
    the base colour (its brightest tenth), ``region`` strokes its darker mean; the other area keeps its own."""
    base = np.array([200, 120, 60], np.float32)
    light = np.linspace(0.4, 1.0, 31, dtype=np.float32)  # per column of the left area
    image = np.zeros((64, 64, 3), np.float32)
    image[:, :31] = base * light[None, :, None]
    image[:, 33:] = (30, 90, 210)
    image[:, 31:33] = 0  # the line between them
    edges = np.zeros((64, 64), np.float32)
    edges[:, 31:33] = 1
    params = {"count_min": 16, "count_max": 16, "length_min": 40, "length_max": 80, "blur_prob": 0.0}
    found = {}
    for colour in ("lit", "region"):
        layer = random_strokes(image.astype(np.uint8), np.random.default_rng(0), edges=edges, colour=colour, **params)
        left = layer[:, :30][layer[:, :30, 3] > 0][:, :3] * 255
        right = layer[:, 34:][layer[:, 34:, 3] > 0][:, :3] * 255
        assert len(left) and len(right)
        assert np.allclose(right, (30, 90, 210), atol=0.5)
        found[colour] = left.mean(axis=0)
    assert np.abs(found["lit"] - base * light[28:].mean()).max() < 8  # the left area's brightest tenth: x = 28-30
    assert found["region"][0] < found["lit"][0] - 30  # its mean is shaded


def test_empty_prob_gives_samples_without_strokes_and_zero_draws_nothing_extra():
    image = (np.random.default_rng(0).random((64, 64, 3)) * 255).astype(np.uint8)
    assert not random_strokes(image, np.random.default_rng(1), StrokeParams(empty_prob=1.0)).any()
    default = random_strokes(image, np.random.default_rng(1), StrokeParams())
    assert np.array_equal(default, random_strokes(image, np.random.default_rng(1), StrokeParams(empty_prob=0.0)))
    empties = [not random_strokes(image, np.random.default_rng(i),
                                  StrokeParams(empty_prob=0.25, length_max=300))[..., 3].any()
               for i in range(200)]
    assert 0.15 < np.mean(empties) < 0.35


def test_training_hint_bounds_region_strokes_by_its_own_edge_channel():
    from benchmarks.toyworld.world import sample

    truth = sample(3, 128)
    hint = training_hint(truth.image, np.random.default_rng(0), StrokeParams(colour="region", blur_prob=0.0))
    assert not ((hint[0] > 0.5) & (hint[4] > 0)).any()


def test_dense_to_sparse_strokes_over_training():
    params = StrokeParams(count_min=2, count_max=8)
    assert params.denser(1.0) is params
    assert (params.denser(4.0).count_min, params.denser(4.0).count_max) == (8, 32)
    pow2 = StrokeParams(count_min=4, count_max=32, count_pow2=True).denser(3.0)  # rounded to x4: still powers of two
    assert (pow2.count_min, pow2.count_max) == (16, 128)
    spec = SampleSpec(strokes=params, stroke_density_start=4.0, stroke_density_steps=10, accumulation=2)
    assert spec.strokes_at(0).count_max == 32
    assert spec.strokes_at(10).count_max == 20  # step 5 of 10: factor 2.5
    assert spec.strokes_at(20) == params and spec.strokes_at(999) == params
    assert SampleSpec(strokes=params).strokes_at(0) is params


def test_a_resume_refuses_changed_options_unless_it_is_a_new_phase():
    saved = {"learning_rate": 1e-5, "timestep_sampling": "uniform", "base_model": "sd15", "output_dir": "a"}
    same = {**saved, "output_dir": "b", "max_train_steps": 99}  # free options do not count
    assert shaping_options(same) == {k: v for k, v in saved.items() if k != "output_dir"}
    assert check_resume(shaping_options(saved), same, new_phase=False) == {}
    colour_phase = {**same, "timestep_sampling": "high", "learning_rate": 1e-4}
    with pytest.raises(ConfigError, match="--new_phase"):
        check_resume(shaping_options(saved), colour_phase, new_phase=False)
    assert check_resume(shaping_options(saved), colour_phase, new_phase=True) == {
        "timestep_sampling": ("uniform", "high"), "learning_rate": (1e-5, 1e-4)}
    with pytest.raises(ConfigError, match="base_model"):
        check_resume(shaping_options(saved), {**colour_phase, "base_model": "other"}, new_phase=True)
    with pytest.raises(ConfigError, match="no training option differs"):
        check_resume(shaping_options(saved), same, new_phase=True)


def test_a_run_with_every_lever_records_its_recipe_and_measures_stroke_use(tiny_base, image_folder, tmp_path):
    levers = dict(timestep_sampling="cubic", timestep_uniform_prob=0.25, new_parts_lr_scale=10.0, min_snr_gamma=5.0,
                  x0_weight_floor=1.0, stroke_loss_weight=4.0, area_colour_loss_weight=1.0, stroke_density_start=2.0,
                  stroke_density_steps=2)
    config = tiny_config(tiny_base, image_folder, tmp_path / "run", max_train_steps=2, **levers,
                         strokes={"length_min": 10, "length_max": 40, "colour": "region", "empty_prob": 0.125})
    result = Trainer(config).run()
    assert result.step == 2 and all(np.isfinite(result.losses))
    _, metadata = load_checkpoint(result.export_path, family=None)
    assert json.loads(metadata["recipe"]) == {**levers, "learning_rate": 1e-4, "caption_dropout": 0.5,
                                              "colour_phase_start": 0.12, "colour_timestep_sampling": "high",
                                              "colour_x0_weight_floor": 1.0, "colour_phase_step": 0,
                                              "fill_probability": 0.5, "fill_gap": 0}
    assert json.loads(metadata["strokes"])["colour"] == "region" and json.loads(metadata["phases"]) == []
    # the hosts read what the fill was: the gap of "0 = in proportion" as it was at 32 px
    assert metadata["fill"] == {"probability": 0.5, "alpha": 0.5, "gap": 2}
    use = result.validation[-1]["stroke_use"]
    assert len(use) == 10 and all(np.isfinite(use))


def test_a_colour_phase_continues_an_edge_phase_with_new_learning_rates(tiny_base, image_folder, tmp_path):
    Trainer(tiny_config(tiny_base, image_folder, tmp_path / "run", max_train_steps=2, new_parts_lr_scale=1.0)).run()
    colour = dict(timestep_sampling="high", new_parts_lr_scale=10.0, learning_rate=2e-4, adam_beta2=0.95,
                  adam_epsilon=1e-6, max_train_steps=4, resume_from_checkpoint="latest")
    with pytest.raises(ConfigError, match="new_phase"):
        Trainer(tiny_config(tiny_base, image_folder, tmp_path / "run", **colour)).run()
    seen = {}

    def rates(trainer, step):
        seen[step] = [(group["lr"], group["betas"], group["eps"]) for group in trainer.optimizer.param_groups]

    result = Trainer(tiny_config(tiny_base, image_folder, tmp_path / "run", new_phase=True, **colour),
                     on_step=rates).run()
    assert result.step == 4 and [rate for rate, _, _ in seen[3]] == [2e-4, pytest.approx(2e-3)]
    assert all(betas == (0.9, 0.95) and eps == 1e-6 for _, betas, eps in seen[3])  # not the checkpoint's AdamW
    _, metadata = load_checkpoint(result.export_path, family=None)
    phases = json.loads(metadata["phases"])
    assert phases == [{"from_step": 2, "changed": {"timestep_sampling": "high", "new_parts_lr_scale": 10.0,
                                                   "learning_rate": 2e-4, "adam_beta2": 0.95, "adam_epsilon": 1e-6}}]
    # continuing the colour phase itself needs no flag; going back to the edge options would be another phase
    again = Trainer(tiny_config(tiny_base, image_folder, tmp_path / "run", **{**colour, "max_train_steps": 5})).run()
    assert again.step == 5


def test_the_colour_phase_switches_timesteps_at_its_step_and_keeps_that_step_on_resume(tiny_base, image_folder,
                                                                                       tmp_path, monkeypatch):
    drawn = []
    original = recipe.sample_timesteps

    def recording(kind, *args):
        drawn.append(kind)
        return original(kind, *args)

    monkeypatch.setattr(recipe, "sample_timesteps", recording)
    phased = dict(colour_phase_start=0.5, colour_timestep_sampling="high", colour_x0_weight_floor=1.0)
    Trainer(tiny_config(tiny_base, image_folder, tmp_path / "run", max_train_steps=4, **phased)).run()
    assert drawn == ["uniform", "uniform", "high", "high"]
    drawn.clear()  # a longer resumed run keeps the colour phase's step (2), not half of the new length
    result = Trainer(tiny_config(tiny_base, image_folder, tmp_path / "run", max_train_steps=6,
                                 resume_from_checkpoint="latest", **phased)).run()
    assert drawn == ["high", "high"]
    _, metadata = load_checkpoint(result.export_path, family=None)
    assert json.loads(metadata["recipe"])["colour_phase_step"] == 2
    assert recipe.colour_phase_step(1.0, 6) is None  # 1 = no colour phase, however long a resumed run grows


def test_stroke_use_is_zero_for_a_model_that_ignores_strokes_and_not_for_one_that_reads_them():
    from model import build_controlnet
    from training.base_model import BaseModel
    from training.stroke_use import BINS, stroke_use_on_images
    from training.tiny_base import tiny_components

    parts = tiny_components()
    controlnet = build_controlnet(parts["unet"])  # zero convolutions: adds nothing, strokes or not
    pixels = torch.rand(2, 3, 64, 64) * 2 - 1
    hints = torch.rand(2, 5, 64, 64)

    def use():
        return stroke_use_on_images(controlnet, BaseModel.from_parts(parts), pixels, ["", "a cat"], hints, repeats=1)

    assert use() == [0.0] * BINS
    torch.manual_seed(1)
    for name, parameter in controlnet.named_parameters():
        if name.startswith(recipe.NEW_PARTS):
            torch.nn.init.normal_(parameter, std=0.1)
    reading = use()
    assert len(reading) == BINS and any(abs(v) > 1e-4 for v in reading)

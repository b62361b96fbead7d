"""The toy-world benchmark: its world, metrics and flood fill are right, and the quick run goes end to end."""
import json

import numpy as np
import pytest
from PIL import Image

from benchmarks.toyworld.__main__ import main
from benchmarks.toyworld.evaluate import held_out_cases, measure
from benchmarks.toyworld.flood_fill import flood_fill
from benchmarks.toyworld.world import OUTLINE, sample


@pytest.mark.parametrize("size", [64, 128])
def test_a_sample_is_deterministic_and_its_maps_agree(size):
    first, again = sample(7, size), sample(7, size)
    assert np.array_equal(first.image, again.image) and np.array_equal(first.regions, again.regions)
    assert not np.array_equal(first.image, sample(8, size).image)
    outline = first.regions < 0
    assert (first.image[outline] == OUTLINE).all() and (first.lineart[outline] == OUTLINE).all()
    assert (first.lineart[~outline] == 255).all()
    inside = ~outline
    assert np.array_equal(first.image[inside], first.colours[first.regions[inside]])


def test_the_truth_scores_perfectly_and_a_grey_image_does_not():
    cases = held_out_cases(4, 128)
    for case in cases:
        truth = measure(case.truth.image, case)
        assert truth["region_error"] == 0.0 and truth["stroke_error"] == 0.0 and truth["edge_f1"] > 0.9
        grey = measure(np.full_like(case.truth.image, 128), case)
        assert grey["region_error"] > 10 and grey["stroke_error"] > 10 and grey["edge_f1"] < 0.1


def test_flood_fill_colours_each_stroked_area_with_its_stroke_colour():
    for case in held_out_cases(4, 128):
        result = flood_fill(case.truth.lineart, case.strokes)
        assert measure(result, case)["region_error"] < 1.0
        unstroked = np.setdiff1d(np.unique(case.truth.regions[case.truth.regions >= 0]),
                                 case.truth.regions[case.strokes[..., 3] >= 0.5])
        for region in unstroked:
            assert (result[case.truth.regions == region] == 255).all()


def test_the_quick_run_trains_evaluates_and_writes_its_results(tmp_path):
    assert main(["--quick", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "results.json").read_text())
    assert set(report["systems"]) == {"base", "ours", "flood_fill", "ours_without_strokes", "vae_reconstruction"}
    for scores in report["systems"].values():
        assert set(scores) == {"region_error", "stroke_error", "edge_f1"}
        assert all(np.isfinite(value) for value in scores.values())
    assert [point["step"] for point in report["curve"]] == [2, 4]
    assert all(np.isfinite(point["stroke_effect"]) for point in report["curve"])  # colour over training
    assert [point["strength"] for point in report["strength_sweep"]] == [1.5, 2.0, 3.0]
    assert all(np.isfinite(point["region_error"]) for point in report["strength_sweep"])
    assert [point["stroke_guidance"] for point in report["stroke_guidance_sweep"]] == [2.0, 3.0, 5.0]
    assert all(np.isfinite(point["stroke_effect"]) for point in report["stroke_guidance_sweep"])
    assert len(report["stroke_use"]) == 10 and np.isfinite(report["stroke_effect"])
    assert 0.0 <= report["base"]["sample_variety"] <= 1.0 and report["base"]["truth_variety"] > 0.5  # 3 drawings
    assert report["base"]["vae_region_error"] == report["systems"]["vae_reconstruction"]["region_error"]
    assert (tmp_path / "controlnet" / "control_colorstroke_toy.safetensors").is_file()
    grid = Image.open(tmp_path / "grid.png")
    assert grid.size == (6 * 64, 3 * 64)
    again = main(["--quick", "--evaluate_only", "--strengths", "0.5", "--stroke_guidance", "", "--out", str(tmp_path)])
    report = json.loads((tmp_path / "results.json").read_text())
    assert again == 0 and report["evaluate_only"] is True
    assert [point["strength"] for point in report["strength_sweep"]] == [0.5] and report["stroke_guidance_sweep"] == []


def test_evaluate_only_without_a_finished_run_says_what_to_do(tmp_path):
    with pytest.raises(SystemExit, match="run without --evaluate_only first"):
        main(["--quick", "--evaluate_only", "--out", str(tmp_path)])
    assert not (tmp_path / "base").exists()


def test_palette_variety_tells_one_colour_from_the_world_s_mix():
    from benchmarks.toyworld.metrics import palette_variety

    world = [sample(seed, 64).image for seed in range(16)]
    blue = [np.full((64, 64, 3), (69, 123, 157), np.uint8)] * 16
    assert palette_variety(world) > 0.8 and palette_variety(blue) == 0.0


def test_the_quick_ablation_trains_each_row_once_and_keeps_finished_rows(tmp_path, monkeypatch):
    from benchmarks.toyworld import ablation

    rows = "plain,combined"
    assert ablation.main(["--quick", "--out", str(tmp_path), "--rows", rows]) == 0
    table = json.loads((tmp_path / "ablation.json").read_text())
    assert [row["recipe"] for row in table["rows"]] == ["plain", "combined"]
    for row in table["rows"]:
        assert row["stroke_effect"] == pytest.approx(row["region_error_without_strokes"] - row["region_error"])
        assert len(row["stroke_use"]) == 10 and row["train_s"] > 0 and 0 <= row["edge_f1"] <= 1
    trained = []
    monkeypatch.setattr(ablation, "train_controlnet", lambda *args: trained.append(args) or 0.0)
    ablation.main(["--quick", "--out", str(tmp_path), "--rows", rows])
    assert trained == []  # both rows were already measured with these settings


def test_the_ablation_rows_spell_out_the_plain_recipe_and_the_default_row_is_the_trainer_default():
    from benchmarks.toyworld.ablation import PLAIN, recipes
    from training.config import parse_config
    from training.loop import RECIPE_OPTIONS

    required = ["--base_model", "b", "--data", "d", "--output_dir", "o"]

    def recipe_of(flags):
        config = parse_config(required + flags)
        return {name: getattr(config, name) for name in RECIPE_OPTIONS}, config.stroke_params()

    rows = recipes(300)
    assert recipe_of(PLAIN + rows["edges, then colour from 0.12 (the default)"]) == recipe_of([])
    plain, plain_strokes = recipe_of(PLAIN)
    assert plain["timestep_sampling"] == "uniform" and plain["new_parts_lr_scale"] == 1.0
    assert plain["x0_weight_floor"] == plain["stroke_loss_weight"] == plain["min_snr_gamma"] == 0.0
    assert plain["colour_phase_start"] == 1.0
    assert plain_strokes.colour == "pixel" and plain_strokes.empty_prob == 0.0
    for name, flags in rows.items():  # every row but the plain one changes something
        assert name == "plain" or recipe_of(PLAIN + flags) != (plain, plain_strokes)

"""Toy world v2: shaded, continuous-colour drawings with broken outlines, and strokes as a person paints them."""
import json

import numpy as np
import pytest

from benchmarks.toyworld import flats
from benchmarks.toyworld.metrics import leak
from benchmarks.toyworld.world import PALETTE
from benchmarks.toyworld.world_v2 import sample_v2, user_strokes_v2


def test_a_sample_is_deterministic_shaded_and_off_the_v1_palette():
    first, again = sample_v2(5, 96), sample_v2(5, 96)
    np.testing.assert_array_equal(first.image, again.image)
    background = first.image[first.regions == 0].astype(int)
    assert background.std(axis=0).max() > 2  # shaded, not flat
    distances = np.abs(first.base_colours[:, None, :].astype(int) - PALETTE[None].astype(int)).max(axis=2)
    assert (distances.min(axis=1) > 0).any()  # colours come from no palette
    assert (first.regions == -1).sum() == (first.lineart.mean(axis=2) < 128).sum()  # every line is no region


def test_sloppy_strokes_are_the_clean_ones_carried_past_the_outline():
    truth = sample_v2(7, 128)
    clean, sloppy = user_strokes_v2(truth, np.random.default_rng(7))
    painted, sloppy_painted = clean[..., 3] > 0, sloppy[..., 3] > 0
    assert painted.any() and (sloppy_painted >= painted).all()
    for index in np.unique(truth.regions[painted]):  # clean strokes stay in their area
        assert index >= 0
    extra = sloppy_painted & ~painted
    assert extra.any() and (truth.regions[extra] != truth.regions[painted][0]).any()


def test_leak_counts_a_stroke_colour_in_an_untouched_area_only():
    truth = sample_v2(3, 64)
    strokes = np.zeros((64, 64, 4), np.float32)
    strokes[truth.regions == 0] = (1.0, 0.0, 1.0, 1.0)  # the background painted magenta
    result = truth.image.copy()
    assert leak(result, truth.regions, truth.colours, strokes) == 0
    result[truth.regions == 1] = (255, 0, 255)
    assert leak(result, truth.regions, truth.colours, strokes) > 0.5 * (truth.regions == 1).sum() / (
        (truth.regions > 0).sum())


def test_the_flats_benchmark_runs_and_our_fill_leaks_less_than_a_flood_fill(tmp_path):
    assert flats.main(["--out", str(tmp_path), "--cases", "6", "--size", "96", "--gap", "3"]) == 0
    systems = json.loads((tmp_path / "flats.json").read_text())["systems"]
    assert systems["fill_only"]["leak"] < systems["flood_fill"]["leak"]
    assert (tmp_path / "flats_grid.png").is_file()


def test_painted_colours_are_lighter_than_the_shaded_truth_and_lit_training_strokes_are_nearer_them(tmp_path):
    from benchmarks.toyworld import stroke_colour

    assert stroke_colour.main(["--out", str(tmp_path), "--cases", "6", "--size", "96"]) == 0
    report = json.loads((tmp_path / "stroke_colour.json").read_text())
    painted = report["held_out_painted_vs_truth_mean"]
    assert painted["as_painted"]["delta_l"] > 5  # a person paints the unshaded colour
    assert painted["painted_times_true_shading"]["delta_e"] < painted["as_painted"]["delta_e"] / 2
    training = report["training_strokes_vs_base_colour"]
    assert training["lit"]["delta_e"] < training["pixel"]["delta_e"] and training["pixel"]["delta_l"] < 0


def test_the_quick_v2_run_trains_a_sparse_and_a_fill_model_and_measures_every_system(tmp_path):
    from PIL import Image

    from benchmarks.toyworld.__main__ import main
    from model import inspect_checkpoint

    assert main(["--quick", "--world", "v2", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "results.json").read_text())
    names = {"base", "ours", "ours_fill", "ours_fill_at_inference_only", "ours_without_strokes",
             "ours_fill_without_strokes", "fill_only", "flood_fill"}
    assert set(report["systems"]) == names | {name + "_sloppy" for name in names} | {"vae_reconstruction"}
    for scores in report["systems"].values():
        assert set(scores) == set(flats.METRICS)
        assert all(np.isfinite(scores[metric]) for metric in ("region_error", "pixel_error", "edge_f1"))
    assert report["systems"]["fill_only"]["region_error"] < report["systems"]["base"]["region_error"]
    fills = {name: inspect_checkpoint(tmp_path / folder / "control_colorstroke_toy.safetensors").fill
             for name, folder in (("ours", "controlnet"), ("ours_fill", "controlnet_fill"))}
    assert fills["ours"]["probability"] == 0 and fills["ours_fill"]["probability"] > 0  # each trained as named
    assert fills["ours_fill"]["gap"] == report["fill_gap"]
    assert Image.open(tmp_path / "grid.png").size == (10 * 64, (3 + 2) * 64)
    from benchmarks.toyworld.v2_curve import main as curve

    assert curve(["--out", str(tmp_path), "--cases", "2", "--steps", "2", "--stroke_guidance", "2"]) == 0
    measured = json.loads((tmp_path / "fill_curve.json").read_text())
    assert len(measured["curve"]) >= 1 and set(measured["stroke_guidance"]) == {"2.0"}
    rows = [*measured["curve"].values(), measured["stroke_guidance"]["2.0"]]
    assert all(set(row) == set(flats.METRICS) for row in rows)
    from benchmarks.toyworld.v2_lever import main as lever

    assert lever(["--out", str(tmp_path), "--name", "lit", "--recipe=--strokes.colour=lit"]) == 0
    levers = json.loads((tmp_path / "levers.json").read_text())
    assert levers["lit"]["flags"] == ["--strokes.colour=lit"] and levers["lit"]["train_s"] > 0
    assert set(levers["lit"]["systems"]) == {"ours_fill", "ours_fill_sloppy", "ours_fill_without_strokes"}
    assert levers["ours_fill (the run)"]["ours_fill"] == report["systems"]["ours_fill"]
    from safetensors import safe_open

    trained = tmp_path / "controlnet_lit" / "control_colorstroke_toy.safetensors"
    with safe_open(str(trained), "pt") as handle:
        assert json.loads(handle.metadata()["colorstroke.strokes"])["colour"] == "lit"
    assert inspect_checkpoint(trained).fill["probability"] > 0  # the lever rides on the fill recipe
    from benchmarks.toyworld.colour_split import main as colour_split

    assert colour_split(["--out", str(tmp_path), "--models", "controlnet_fill,controlnet_lit", "--cases", "2",
                         "--steps", "2"]) == 0
    split = json.loads((tmp_path / "colour_split.json").read_text())
    assert set(split) == {"controlnet_fill", "controlnet_lit"}
    assert all(0 <= row["share_above_20"] <= 1 and row["worst_tenth_delta_e"] >= row["median_delta_e"]
               for row in split.values())
    for row in split.values():
        bins = row["by_size"]
        assert sum(found["areas"] for found in bins.values()) == row["areas"]
        assert all(found["flats_delta_e"] >= 0 and 0 <= found["share_above_20"] <= 1 for found in bins.values())
    from benchmarks.toyworld.v2_sweep import main as sweep

    settings = report["settings"]
    assert sweep(["--out", str(tmp_path), "--strengths", "0,1", "--seeds", "2", "--cases",
                  str(settings["eval_cases"]), "--steps", str(settings["inference_steps"])]) == 0
    swept = json.loads((tmp_path / "sweep.json").read_text())["models"]["controlnet_fill"]
    assert set(swept) == {"0", "1"} and all(len(row["per_seed"]) == 2 for row in swept.values())
    assert swept["1"]["per_seed"][0] == report["systems"]["ours_fill"]  # seed 0 at strength 1 is the run's own
    assert swept["1"]["per_seed"][1] != swept["1"]["per_seed"][0] and swept["1"]["sd"]["pixel_error"] > 0
    assert swept["0"]["mean"] != swept["1"]["mean"]  # strength 0 is the base alone: the control changes the image
    assert sweep(["--out", str(tmp_path), "--strengths", "2", "--seeds", "2", "--cases", str(settings["eval_cases"]),
                  "--steps", str(settings["inference_steps"])]) == 0  # the same kind of sweep adds its row
    assert set(json.loads((tmp_path / "sweep.json").read_text())["models"]["controlnet_fill"]) == {"0", "1", "2"}
    assert sweep(["--out", str(tmp_path), "--strengths", "1,3", "--seeds", "1", "--window", "high", "--cases", "2",
                  "--steps", "2"]) == 0
    high = json.loads((tmp_path / "sweep_high.json").read_text())["models"]["controlnet_fill"]
    assert high["1"]["sd"]["region_error"] == 0 and high["1"]["mean"] != high["3"]["mean"]


def test_v2_sweep_refuses_bad_strengths_and_too_many_cases(capsys):
    from benchmarks.toyworld.v2_sweep import main as sweep

    for argv in (["--strengths", "1,x"], ["--strengths", "-1"], ["--cases", "1000"]):
        with pytest.raises(SystemExit) as stop:
            sweep(["--out", "nowhere", *argv])
        assert stop.value.code == 2  # argparse's usage error, before any model is read
    message = capsys.readouterr().err
    assert "comma-separated list of numbers" in message and "strengths >= 0" in message
    assert "--cases must lie" in message

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
    assert (tmp_path / "controlnet" / "control_colorstroke_toy.safetensors").is_file()
    grid = Image.open(tmp_path / "grid.png")
    assert grid.size == (6 * 64, 3 * 64)
    again = main(["--quick", "--evaluate_only", "--out", str(tmp_path)])
    assert again == 0 and json.loads((tmp_path / "results.json").read_text())["evaluate_only"] is True


def test_evaluate_only_without_a_finished_run_says_what_to_do(tmp_path):
    with pytest.raises(SystemExit, match="run without --evaluate_only first"):
        main(["--quick", "--evaluate_only", "--out", str(tmp_path)])
    assert not (tmp_path / "base").exists()

"""Options: defaults < YAML < flags, stroke/Canny sections, --help, clear errors."""
import dataclasses
import subprocess
import sys

import pytest

from preprocessors import EdgeParams, StrokeParams
from training.config import ConfigError, TrainConfig, build_parser, parse_config


def test_flags_override_yaml_which_overrides_defaults(tmp_path):
    config_file = tmp_path / "run.yaml"
    config_file.write_text(
        "learning_rate: 2.0e-5\ntrain_batch_size: 3\nstrokes:\n  count_max: 4\n  thickness: [1, 2]\n"
        "edges:\n  low_min: 20\n", encoding="utf-8")
    config = parse_config(["--config", str(config_file), "--base_model", "b", "--data", "d", "--output_dir", "o",
                           "--train_batch_size", "5", "--strokes.count_min", "2", "--edges.low_max", "90"])
    assert config.learning_rate == 2e-5  # from the file
    assert config.train_batch_size == 5  # flag wins
    assert config.caption_dropout == 0.5  # default
    assert config.stroke_params() == StrokeParams(count_min=2, count_max=4, thickness=(1, 2))
    assert config.edge_params() == EdgeParams(low_min=20, low_max=90)


def test_boolean_flags_and_demo_defaults():
    config = parse_config(["--demo", "--output_dir", "o", "--use_ema", "--max_train_steps", "7"])
    assert config.demo and config.use_ema and config.max_train_steps == 7
    assert config.resolution == 64  # the demo's default, not 512
    assert not parse_config(["--demo", "--output_dir", "o", "--no-allow_tf32"]).allow_tf32


def test_help_explains_every_option():
    text = build_parser().format_help()
    for f in dataclasses.fields(TrainConfig):
        if f.name not in ("strokes", "edges"):
            assert f"--{f.name}" in text
    for f in dataclasses.fields(StrokeParams):
        assert f"--strokes.{f.name}" in text
    for f in dataclasses.fields(EdgeParams):
        assert f"--edges.{f.name}" in text


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--data", "d", "--output_dir", "o"], "--base_model is required"),
        (["--base_model", "b", "--data", "d", "--output_dir", "o", "--resolution", "500"], "multiple of 8"),
        (["--base_model", "b", "--data", "d", "--output_dir", "o", "--strokes.count_min", "0"], "count_min"),
        (["--base_model", "b", "--data", "d", "--output_dir", "o", "--crop", "random", "--cache_latents", "yes"],
         "stale"),
    ],
)
def test_bad_options_say_what_is_wrong(argv, message):
    with pytest.raises(ConfigError, match=message):
        parse_config(argv)


def test_unknown_yaml_key_is_named(tmp_path):
    config_file = tmp_path / "bad.yaml"
    config_file.write_text("learning_rat: 1\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="learning_rat"):
        parse_config(["--config", str(config_file)])


def test_module_entry_point_prints_help():
    done = subprocess.run([sys.executable, "-m", "training.train", "--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0
    assert "--resume_from_checkpoint" in done.stdout and "--strokes.count_max" in done.stdout

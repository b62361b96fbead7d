"""Options: defaults < YAML < flags, stroke/Canny sections, --help, clear errors."""
import dataclasses
import pathlib
import re
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
        (["--base_model", "b", "--data", "d", "--output_dir", "o", "--divergence_factor", "0.5"], "above 1"),
        (["--base_model", "b", "--data", "d", "--output_dir", "o", "--learning_rate", "-1"],
         "learning_rate must be positive, got -1"),
        (["--base_model", "b", "--data", "d", "--output_dir", "o", "--adam_beta2", "1"], r"lie in \[0, 1\)"),
        (["--base_model", "b", "--data", "d", "--output_dir", "o", "--hint_on_gpu"], "--fill_probability 0"),
        (["--base_model", "b", "--data", "d", "--output_dir", "o", "--hint_on_gpu", "--fill_probability", "0",
          "--area_colour_loss_weight", "1"], "--area_colour_loss_weight 0"),
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
    done = subprocess.run([sys.executable, "-m", "training.train", "--help"], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0
    assert "--resume_from_checkpoint" in done.stdout and "--strokes.count_max" in done.stdout


def write_yaml(tmp_path, text: str):
    config_file = tmp_path / "run.yaml"
    config_file.write_text(text, encoding="utf-8")
    return ["--config", str(config_file), "--base_model", "b", "--data", "d", "--output_dir", "o"]


def test_yaml_values_get_their_option_types(tmp_path):
    # PyYAML reads 1e-5 (no dot) as text and yes/no as booleans; each must still mean what it says
    argv = write_yaml(tmp_path, "learning_rate: 1e-5\nmax_train_steps: 1.0e3\nadam_epsilon: 1\nmixed_precision: no\n"
                                "cache_latents: yes\nexport_name: 2024\nrandom_flip: 'off'\n"
                                "strokes:\n  thickness: 2\n  count_pow2: 'true'\nedges:\n  low_min: 1e1\n")
    config = parse_config(argv)
    assert type(config.learning_rate) is float and config.learning_rate == 1e-5
    assert type(config.max_train_steps) is int and config.max_train_steps == 1000
    assert type(config.adam_epsilon) is float and config.adam_epsilon == 1.0
    assert config.mixed_precision == "no" and config.cache_latents == "yes" and config.export_name == "2024"
    assert config.random_flip is False
    assert config.stroke_params() == StrokeParams(thickness=(2,), count_pow2=True)
    assert config.edge_params().low_min == 10.0


def test_flags_parse_numbers_as_yaml_does():
    config = parse_config(["--base_model", "b", "--data", "d", "--output_dir", "o", "--max_train_steps", "1e3",
                           "--strokes.thickness", "0,2"])
    assert config.max_train_steps == 1000 and config.stroke_params().thickness == (0, 2)


@pytest.mark.parametrize(
    "text, message",
    [
        ("max_train_steps: ten", r"max_train_steps in .*run\.yaml.*: expected an integer \(int\), got 'ten'"),
        ("max_train_steps: 2.5", r"max_train_steps .*integer.*got 2\.5"),
        ("learning_rate: fast", r"learning_rate .*expected a number \(float\), got 'fast'"),
        ("learning_rate: [1, 2]", r"learning_rate .*number"),
        ("use_ema: maybe", r"use_ema .*expected true or false \(bool\), got 'maybe'"),
        ("resolution: null", r"resolution .*integer \(int\), got None"),
        ("strokes:\n  thickness: [1, x]", r"strokes\.thickness .*list of integers.*got \[1, 'x'\]"),
        ("edges:\n  low_min: low", r"edges\.low_min .*number.*got 'low'"),
        ("edges: 5", r"edges .*mapping"),
        ("edges:\n  low_mn: 5", r"unknown edges parameters .*\['low_mn'\]"),
    ],
)
def test_yaml_value_of_the_wrong_type_is_named(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message):
        parse_config(write_yaml(tmp_path, text + "\n"))


def test_validate_converts_options_set_in_code():
    config = TrainConfig(base_model="b", data="d", output_dir="o", learning_rate="1e-5", strokes={"thickness": [1]})
    assert config.validate().learning_rate == 1e-5 and config.stroke_params().thickness == (1,)
    with pytest.raises(ConfigError, match="max_train_steps: expected an integer"):
        TrainConfig(base_model="b", data="d", output_dir="o", max_train_steps="ten").validate()


@pytest.mark.parametrize(
    "given, launcher, cuda, bf16, expected",
    [
        (None, None, False, False, ("no", "auto: no CUDA GPU")),
        (None, None, True, True, ("bf16", "auto: CUDA GPU with bf16")),
        (None, None, True, False, ("fp16", "auto: CUDA GPU without bf16")),
        (None, "bf16", False, False, ("bf16", "accelerate launch/config (ACCELERATE_MIXED_PRECISION)")),
        (None, "NO", True, True, ("no", "accelerate launch/config (ACCELERATE_MIXED_PRECISION)")),
        ("fp16", "bf16", True, True, ("fp16", "--mixed_precision")),
        ("no", None, True, True, ("no", "--mixed_precision")),
    ],
)
def test_mixed_precision_resolution(given, launcher, cuda, bf16, expected):
    from training.loop import resolve_mixed_precision

    assert resolve_mixed_precision(given, launcher, cuda, bf16) == expected


def test_launcher_precision_this_trainer_cannot_use_is_refused():
    from training.loop import resolve_mixed_precision

    with pytest.raises(ConfigError, match="ACCELERATE_MIXED_PRECISION='fp8'.*--mixed_precision"):
        resolve_mixed_precision(None, "fp8", True, True)


def test_accelerate_launch_hands_its_precision_over_in_the_variable_we_read():
    import inspect

    from accelerate.utils import launch

    from training.loop import LAUNCHER_PRECISION_ENV

    assert f'current_env["{LAUNCHER_PRECISION_ENV}"] = str(mixed_precision)' in inspect.getsource(
        launch.prepare_simple_launcher_cmd_env)
    assert parse_config(["--base_model", "b", "--data", "d", "--output_dir", "o"]).mixed_precision is None


def _just_outside(bounds):
    """A value the bounds refuse, next to what they accept (None when they accept every finite number)."""
    if bounds.low is not None:
        return bounds.low if bounds.low_open else bounds.low - 1
    if bounds.high is not None:
        return bounds.high if bounds.high_open else bounds.high + 1
    return None


def test_every_numeric_option_is_checked_by_what_its_declaration_says():
    base = {"base_model": "b", "data": "d", "output_dir": "o"}
    bounded = [f for f in dataclasses.fields(TrainConfig) if f.metadata["bounds"] is not None]
    numeric = [f for f in dataclasses.fields(TrainConfig)
               if isinstance(f.default, (int, float)) and not isinstance(f.default, bool)]
    assert {f.name for f in numeric} == {f.name for f in bounded}  # no number goes unchecked
    for f in bounded:
        bounds, value = f.metadata["bounds"], _just_outside(f.metadata["bounds"])
        assert bounds.accepts(f.default), f.name
        with pytest.raises(ConfigError, match=rf"^{f.name} must {re.escape(bounds.describe())}, got"):
            TrainConfig(**base, **{f.name: value}).validate()
        with pytest.raises(ConfigError, match=f.name):
            TrainConfig(**base, **{f.name: float("nan")}).validate()


def test_a_bad_number_on_the_command_line_ends_in_a_message_not_a_traceback():
    script = pathlib.Path(__file__).resolve().parent.parent / "training" / "train.py"
    done = subprocess.run([sys.executable, str(script), "--demo", "--output_dir", "o", "--learning_rate", "-1"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "learning_rate must be positive, got -1" in done.stderr


def test_resume_rules_and_the_recorded_recipe_come_from_the_declarations():
    from training.loop import RECIPE_OPTIONS
    from training.phases import FIXED_OPTIONS, FREE_OPTIONS, check_resume, shaping_options

    saved = TrainConfig(base_model="b", data="d", output_dir="o").to_dict()
    for name in ("seed", "polarity", "train_batch_size"):  # declared FIXED: never within a run
        assert name in FIXED_OPTIONS
        changed = {**saved, name: "x"}
        with pytest.raises(ConfigError, match="cannot change within a run"):
            check_resume(shaping_options(saved), changed, new_phase=True)
    # declared FREE: a resume may change it without a new phase
    assert "max_train_steps" in FREE_OPTIONS
    assert check_resume(shaping_options(saved), {**saved, "max_train_steps": 1}, new_phase=False) == {}
    # a NEW_PHASE option (the fill) needs --new_phase, and is part of the recorded recipe
    assert check_resume(shaping_options(saved), {**saved, "fill_probability": 1.0}, new_phase=True) == {
        "fill_probability": (0.5, 1.0)}
    assert {"fill_probability", "fill_gap", "learning_rate"} <= set(RECIPE_OPTIONS)
    assert "output_dir" not in RECIPE_OPTIONS

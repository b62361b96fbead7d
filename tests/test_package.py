"""The package around the code: install.py, the demo command, ComfyUI entry import."""
import importlib.util
import pathlib
import subprocess
import sys

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent


def load_install():
    spec = importlib.util.spec_from_file_location("colorstroke_install", ROOT / "install.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_install_finds_nothing_missing_in_a_complete_environment():
    install = load_install()
    assert install.missing(install.requirements()) == []


def test_install_reports_missing_modules_and_never_torch(tmp_path):
    install = load_install()
    assert install.missing(["numpy>=1", "surely-not-installed-pkg==1.0"]) == ["surely-not-installed-pkg==1.0"]
    assert not any(install.distribution_name(r).startswith("torch") for r in install.requirements())
    bad = tmp_path / "requirements.txt"
    bad.write_text("numpy\ntorch>=2\n")
    with pytest.raises(SystemExit, match="torch"):
        install.requirements(bad)


def test_demo_command_writes_the_hint_and_its_preview(tmp_path):
    result = subprocess.run([sys.executable, "-m", "preprocessors", "--out", str(tmp_path)], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    hint = np.load(tmp_path / "hint.npy")
    assert hint.shape == (5, 512, 512) and hint[4].max() == 1 and hint[0].max() == 1
    assert (tmp_path / "hint_preview.png").stat().st_size > 1000


def test_demo_command_reports_a_bad_file_clearly(tmp_path):
    result = subprocess.run([sys.executable, "-m", "preprocessors", "--lineart", str(tmp_path / "none.png"),
                             "--out", str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "does not exist" in result.stderr


def test_repo_imports_as_a_package_without_comfyui(tmp_path):
    """ComfyUI imports the clone folder as a package under the user's folder name."""
    link = tmp_path / "My-Clone_Name"
    link.symlink_to(ROOT, target_is_directory=True)
    code = ("import importlib, sys; sys.path.insert(0, sys.argv[1]); m = importlib.import_module('My-Clone_Name'); "
            "assert isinstance(m.NODE_CLASS_MAPPINGS, dict); "
            "assert 'comfy' not in sys.modules and 'torch' not in sys.modules")
    result = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_every_example_loads_the_file_the_trainer_exports_under_the_webui_filter():
    """One model file name for all hosts: the trainer's export, which A1111/Forge list under ColorStroke."""
    import dataclasses
    import json

    from scripts.colorstroke_lib.hints import MODEL_NAME_FILTER
    from training.config import TrainConfig

    exported = next(f.default for f in dataclasses.fields(TrainConfig) if f.name == "export_name") + ".safetensors"
    workflow = json.loads((ROOT / "example_workflows" / "Color Stroke - colour a line drawing.json").read_text())
    loader = next(n for n in workflow["nodes"] if n["type"] == "LoadColorStrokeControlNet")
    assert loader["widgets_values"][0] == exported == "control_colorstroke_sd15.safetensors"
    assert MODEL_NAME_FILTER in exported
    assert f'load_checkpoint("models/{exported}")' in (ROOT / "model" / "inference.py").read_text()

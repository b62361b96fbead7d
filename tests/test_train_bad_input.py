"""Bad input to the trainer: base models that are not SD 1.5, missing data, the script's error messages."""
import json
import subprocess
import sys

import pytest
import torch
from safetensors.torch import save_file

from training.base_model import BaseModelError, load_base
from training.train import main


def test_folder_that_is_not_a_diffusers_model(tmp_path):
    (tmp_path / "random").mkdir()
    with pytest.raises(BaseModelError, match="not a diffusers Stable Diffusion folder"):
        load_base(tmp_path / "random")
    with pytest.raises(BaseModelError, match="does not exist"):
        load_base(tmp_path / "nowhere")


def test_non_sd15_shapes_are_refused_unless_allowed(tiny_base):
    with pytest.raises(BaseModelError, match="not SD 1.5"):
        load_base(tiny_base)  # cross-attention width 32, not 768
    assert load_base(tiny_base, allow_non_sd15=True).unet.config.cross_attention_dim == 32


def test_broken_folders_and_single_files_say_what_they_are(tmp_path):
    folder = tmp_path / "sdxl"
    (folder / "unet").mkdir(parents=True)
    (folder / "unet" / "config.json").write_text("{}")
    (folder / "model_index.json").write_text(
        json.dumps({"text_encoder_2": ["transformers", "CLIPTextModelWithProjection"]}))
    with pytest.raises(BaseModelError, match="cannot load the diffusers folder .*sdxl'.*no file named"):
        load_base(folder)  # a part without its weights
    tensor = torch.zeros(1)
    save_file({"conditioner.embedders.1.model.ln_final.weight": tensor,
               "model.diffusion_model.input_blocks.0.0.weight": tensor.clone()},
              str(tmp_path / "sdxl.safetensors"))
    with pytest.raises(BaseModelError, match="cannot build SDXL from .*sdxl.safetensors.*--base_config with a local "
                                             "diffusers SDXL folder"):
        load_base(tmp_path / "sdxl.safetensors", base_config=tmp_path / "no_configs_here")
    save_file({"lora_unet_down_blocks_0.alpha": tensor}, str(tmp_path / "lora.safetensors"))
    with pytest.raises(BaseModelError, match="no Stable Diffusion UNet"):
        load_base(tmp_path / "lora.safetensors")
    (tmp_path / "broken.safetensors").write_bytes(b"not really")
    with pytest.raises(BaseModelError, match="not a readable"):
        load_base(tmp_path / "broken.safetensors")


def test_main_reports_empty_data_folder_and_bad_base(tiny_base, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    code = main(["--base_model", str(tiny_base), "--allow_non_sd15", "--data", str(tmp_path / "empty"),
                 "--output_dir", str(tmp_path / "out"), "--report_to", "none", "--num_workers", "0"])
    assert code == 1 and "no images found" in capsys.readouterr().err
    code = main(["--base_model", str(tmp_path / "nope"), "--data", str(tmp_path), "--output_dir", str(tmp_path / "o")])
    assert code == 1 and "does not exist" in capsys.readouterr().err
    assert main(["--output_dir", str(tmp_path / "o")]) == 2  # no base model, no --demo


@pytest.mark.parametrize("extra, export", [
    ([], "demo_tiny_colorstroke_not_sd15.safetensors"),
    (["--lora_rank", "4"], "demo_tiny_colorstroke_not_sd15_control_lora_rank4.safetensors"),
])
def test_demo_script_runs_end_to_end(tmp_path, extra, export):
    done = subprocess.run(
        [sys.executable, "training/train.py", "--demo", "--output_dir", str(tmp_path / "demo"),
         "--max_train_steps", "4", "--checkpointing_steps", "2", "--validation_inference_steps", "2",
         "--report_to", "none", *extra],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "loaded the exported ControlNet back" in done.stdout
    assert sorted(p.name for p in (tmp_path / "demo").glob("*.safetensors")) == [export]
    assert list((tmp_path / "demo" / "validation").glob("*.png"))
    if extra:  # the control-LoRA: what the hosts read
        from safetensors import safe_open

        with safe_open(str(tmp_path / "demo" / export), "pt") as handle:
            names, header = set(handle.keys()), handle.metadata()
            hint = handle.get_slice("input_hint_block.0.weight").get_shape()
        assert "lora_controlnet" in names and any(n.endswith(".up") for n in names) and hint[1] == 5
        assert header["colorstroke.lora_rank"] == "4" and "a rank-4 control-LoRA on the base" in done.stdout


def test_single_file_suffixes_are_case_insensitive(tmp_path):
    tensor = torch.zeros(1)
    save_file({"lora_unet_down_blocks_0.alpha": tensor}, str(tmp_path / "LORA.SAFETENSORS"))
    with pytest.raises(BaseModelError, match="no Stable Diffusion UNet"):  # read as a .safetensors file, not refused
        load_base(tmp_path / "LORA.SAFETENSORS")
    torch.save({"lora_unet_down_blocks_0.alpha": tensor}, str(tmp_path / "lora.Ckpt"))
    with pytest.raises(BaseModelError, match="no Stable Diffusion UNet"):
        load_base(tmp_path / "lora.Ckpt")


def test_upper_case_safetensors_base_reaches_diffusers_under_a_name_it_can_read(tmp_path, monkeypatch):
    from diffusers import StableDiffusionPipeline
    from diffusers.models.model_loading_utils import load_state_dict

    tensors = {"model.diffusion_model.input_blocks.0.0.weight": torch.arange(4.0)}
    save_file(tensors, str(tmp_path / "Base.SAFETENSORS"))
    seen = {}

    def from_single_file(path, **kwargs):
        seen["tensors"] = load_state_dict(path)  # diffusers' own reader, which goes by the suffix
        raise ValueError("stop here: no real base in this test")

    monkeypatch.setattr(StableDiffusionPipeline, "from_single_file", from_single_file)
    with pytest.raises(BaseModelError, match="cannot build SD 1.5 from .*Base.SAFETENSORS"):
        load_base(tmp_path / "Base.SAFETENSORS")
    assert torch.equal(seen["tensors"]["model.diffusion_model.input_blocks.0.0.weight"], torch.arange(4.0))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["Base.SAFETENSORS"]  # the link lived elsewhere


@pytest.mark.parametrize("good", [3, 0])
def test_unreadable_validation_images_are_skipped_and_counted(tmp_path, caplog, capsys, good):
    """The held-out validation picks are the folder's last images: broken ones are skipped and said, as training
    skips them, and the run goes on; a folder with nothing readable stops in training, saying why."""
    import numpy as np
    from PIL import Image

    data = tmp_path / "data"
    data.mkdir()
    for index in range(good):
        Image.fromarray(np.full((96, 96, 3), 60 * index, np.uint8)).save(data / f"a{index}.png")
    for index in range(3):
        (data / f"z{index}.png").write_bytes(b"not a picture")
    code = main(["--demo", "--data", str(data), "--output_dir", str(tmp_path / "out"), "--max_train_steps", "2",
                 "--train_batch_size", "2", "--num_validation_samples", "3" if good else "1", "--validation_steps", "2",
                 "--validation_inference_steps", "1", "--report_to", "none", "--num_workers", "0"])
    if good:
        assert code == 0 and (tmp_path / "out" / "demo_tiny_colorstroke_not_sd15.safetensors").is_file()
        assert "validation: 3 of 3 held-out images skipped (unreadable image: 3); none left" in caplog.text
    else:
        assert code == 1 and "unreadable" in capsys.readouterr().err

"""Control-LoRA (``model.control_lora``): low-rank layers, the file the hosts read, loading it on a base UNet, the
converter from a full ControlNet, and the trainer's ``--lora_rank`` mode."""
import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from model import CheckpointError, build_controlnet, inspect_checkpoint, load_checkpoint, save_checkpoint
from model.control_lora import (
    LORA_TARGETS,
    MARKER,
    add_low_rank,
    approximate_with_low_rank,
    copied_layers,
    low_rank_deltas,
    residual_error,
)
from tests.helpers import max_difference, randomise_outputs, residuals_of, tiny_config, tiny_unet
from training.tiny_base import tiny_sdxl_unet

REPO = Path(__file__).resolve().parents[1]


def trained_lora(unet, rank: int = 4, seed: int = 3):
    """A control-LoRA of ``rank`` on ``unet`` as training leaves it: random differences, biases and outputs."""
    controlnet = randomise_outputs(build_controlnet(unet))
    add_low_rank(controlnet, rank)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for delta in low_rank_deltas(controlnet).values():
            delta.up.copy_(torch.randn(delta.up.shape, generator=generator) * 0.05)
        for name, parameter in controlnet.named_parameters():
            if name.endswith(".bias") and parameter.requires_grad:
                parameter.add_(torch.randn(parameter.shape, generator=generator) * 0.01)
    return controlnet


def fine_tune_of(unet, seed: int = 5):
    """A copy of ``unet`` with every weight moved a little: a user's fine-tuned checkpoint of the same base."""
    tuned = tiny_unet()
    tuned.load_state_dict(unet.state_dict())
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in tuned.parameters():
            parameter.add_(torch.randn(parameter.shape, generator=generator) * 0.02)
    return tuned


def test_low_rank_layers_start_as_the_base_and_train_only_the_differences(controlnet_inputs):
    unet = tiny_unet()
    plain = randomise_outputs(build_controlnet(unet))
    lora = copy.deepcopy(plain)
    layers = len(copied_layers(lora))
    assert add_low_rank(lora, 4) == layers > 20
    assert max_difference(residuals_of(plain, controlnet_inputs), residuals_of(lora, controlnet_inputs)) == 0.0
    frozen = {name for name, p in lora.named_parameters() if not p.requires_grad}
    assert len(frozen) == layers and all(name.endswith("parametrizations.weight.original") for name in frozen)
    trained = {name for name, p in lora.named_parameters() if p.requires_grad}
    assert any(name.startswith("controlnet_cond_embedding.") for name in trained)  # the new parts in full
    assert any(name.endswith("norm1.weight") for name in trained)  # norms in full, as the hosts' files
    with pytest.raises(ValueError, match="already has low-rank layers"):
        add_low_rank(lora, 4)


def test_a_control_lora_file_is_what_the_hosts_read(tmp_path, controlnet_inputs):
    unet = tiny_unet()
    controlnet = trained_lora(unet)
    path = save_checkpoint(controlnet, tmp_path / "lora.safetensors", layout="control_lora", dtype="fp32",
                           metadata={"edge_polarity": "white_on_black"})
    tensors = load_file(str(path))
    assert MARKER in tensors and not any(k.startswith("control_model.") for k in tensors)
    assert tensors["input_hint_block.0.weight"].shape[1] == 5
    ups = {k[:-len(".up")] for k in tensors if k.endswith(".up")}
    assert ups == {k[:-len(".down")] for k in tensors if k.endswith(".down")} and len(ups) == len(copied_layers(
        controlnet))
    assert not any(f"{layer}.weight" in tensors for layer in ups)  # the base weights are not in the file
    with safe_open(str(path), "pt") as handle:
        header = handle.metadata()
    assert (header["colorstroke.layout"], header["colorstroke.lora_rank"]) == ("control_lora", "4")
    assert header["colorstroke.lora_targets"] == LORA_TARGETS
    info = inspect_checkpoint(path)
    assert (info.layout, info.lora_rank, info.hint_channels, info.cross_attention_dim) == ("control_lora", 4, 5, 32)
    full = save_checkpoint(controlnet, tmp_path / "full.safetensors", layout="ldm", dtype="fp32")
    assert path.stat().st_size < full.stat().st_size

    loaded, metadata = load_checkpoint(path, family=None, base_unet=unet)
    assert metadata["lora_rank"] == 4 and metadata["edge_polarity"] == "white_on_black"
    expected = residuals_of(controlnet, controlnet_inputs)
    assert max_difference(expected, residuals_of(loaded, controlnet_inputs)) <= 1e-5
    merged, _ = load_checkpoint(full, family=None)  # the full export is the same model, merged
    assert max_difference(expected, residuals_of(merged, controlnet_inputs)) <= 1e-5


def test_a_control_lora_follows_the_checkpoint_it_is_used_on(tmp_path, controlnet_inputs):
    unet = tiny_unet()
    controlnet = trained_lora(unet)
    path = save_checkpoint(controlnet, tmp_path / "lora.safetensors", layout="control_lora", dtype="fp32")
    tuned = fine_tune_of(unet)
    on_tuned, _ = load_checkpoint(path, family=None, base_unet=tuned)
    layer = "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q"
    delta = low_rank_deltas(controlnet)[layer].delta()
    expected = tuned.get_submodule(layer).weight + delta.view_as(tuned.get_submodule(layer).weight)
    assert torch.allclose(on_tuned.get_submodule(layer).weight, expected, atol=1e-6)
    on_base, _ = load_checkpoint(path, family=None, base_unet=unet)
    assert max_difference(residuals_of(on_base, controlnet_inputs), residuals_of(on_tuned, controlnet_inputs)) > 1e-4


def test_a_control_lora_without_its_base_or_on_another_family_is_refused(tmp_path):
    unet = tiny_unet()
    path = save_checkpoint(trained_lora(unet), tmp_path / "lora.safetensors", layout="control_lora")
    with pytest.raises(CheckpointError, match="is a control-LoRA: it holds only differences.*base_unet=pipe.unet"):
        load_checkpoint(path, family=None)
    with pytest.raises(CheckpointError, match="SD 1.5.*SDXL|SDXL.*SD 1.5"):
        load_checkpoint(path, family=None, base_unet=tiny_sdxl_unet())
    wider = tiny_unet(cross_attention_dim=48)
    with pytest.raises(CheckpointError, match="does not fit this base UNet"):
        load_checkpoint(path, family=None, base_unet=wider)


def test_a_full_model_is_refused_as_a_control_lora(tmp_path):
    with pytest.raises(CheckpointError, match="no low-rank layers.*model.convert"):
        save_checkpoint(build_controlnet(tiny_unet()), tmp_path / "x.safetensors", layout="control_lora")
    assert not (tmp_path / "x.safetensors").exists()


def full_trained_controlnet(unet, seed: int = 9):
    """A full ControlNet moved away from ``unet``'s encoder, as full training leaves it."""
    controlnet = randomise_outputs(build_controlnet(unet))
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in controlnet.parameters():
            parameter.add_(torch.randn(parameter.shape, generator=generator) * 0.02)
    return controlnet


def test_the_low_rank_approximation_improves_with_rank_and_is_exact_at_full_rank():
    unet = tiny_unet()
    controlnet = full_trained_controlnet(unet)
    errors = {}
    for rank in (1, 8, 10_000):
        approximation = copy.deepcopy(controlnet)
        report = approximate_with_low_rank(approximation, build_controlnet(unet), rank)
        errors[rank] = report["weight_error"], residual_error(controlnet, approximation)
    assert errors[1][0] > errors[8][0] > 0.0 and errors[1][1] > errors[8][1]
    assert errors[10_000][0] < 1e-5 and errors[10_000][1] < 1e-4


def test_converter_makes_a_control_lora_and_reads_one_back(tmp_path, controlnet_inputs):
    unet = tiny_unet()
    (tmp_path / "base").mkdir()
    unet.save_pretrained(tmp_path / "base" / "unet")
    controlnet = full_trained_controlnet(unet)
    full = save_checkpoint(controlnet, tmp_path / "full.safetensors", layout="ldm", dtype="fp32",
                           metadata={"edge_polarity": "white_on_black", "training_step": 7})
    lora = tmp_path / "lora.safetensors"
    command = [sys.executable, "-m", "model.convert", str(full), str(lora), "--layout", "control_lora", "--base",
               str(tmp_path / "base"), "--control_lora_rank", "10000", "--allow-non-sd15"]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "relative error of the layers' differences 0.0000" in done.stdout
    assert inspect_checkpoint(lora).layout == "control_lora"
    loaded, metadata = load_checkpoint(lora, family=None, base_unet=unet)
    assert metadata["training_step"] == 7
    assert max_difference(residuals_of(controlnet, controlnet_inputs), residuals_of(loaded, controlnet_inputs)) <= 1e-4

    back = tmp_path / "back.safetensors"  # a control-LoRA made full again, on its base
    command = [sys.executable, "-m", "model.convert", str(lora), str(back), "--layout", "ldm", "--base",
               str(tmp_path / "base"), "--allow-non-sd15"]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "colorstroke.lora_rank" not in json.dumps(load_checkpoint(back, family=None)[1])
    without_base = subprocess.run(command[:7] + ["--allow-non-sd15"], cwd=REPO, capture_output=True, text=True,
                                  timeout=120)
    assert without_base.returncode == 2 and "is a control-LoRA: it needs --base" in without_base.stderr


# --- the trainer's --lora_rank mode ---------------------------------------------------------------------------------

def test_lora_training_exports_a_control_lora_and_the_same_model_in_full(tiny_base, image_folder, tmp_path,
                                                                         controlnet_inputs, capsys):
    from diffusers import UNet2DConditionModel

    from training.loop import Trainer

    config = tiny_config(tiny_base, image_folder, tmp_path / "run", lora_rank=2, lora_export="both",
                         learning_rate=1e-3)
    result = Trainer(config).run()
    assert "a control-LoRA: rank 2 differences on" in capsys.readouterr().out
    assert result.export_path.name == f"{config.export_name}_control_lora_rank2.safetensors"
    assert inspect_checkpoint(result.export_path).lora_rank == 2
    unet = UNet2DConditionModel.from_pretrained(tiny_base, subfolder="unet")
    lora, _ = load_checkpoint(result.export_path, family=None, base_unet=unet)
    full, _ = load_checkpoint(tmp_path / "run" / f"{config.export_name}.safetensors", family=None)
    assert max_difference(residuals_of(lora, controlnet_inputs), residuals_of(full, controlnet_inputs)) <= 1e-5
    untrained = build_controlnet(unet)
    layer = "down_blocks.0.resnets.0.conv1"
    assert not torch.equal(lora.get_submodule(layer).weight, untrained.get_submodule(layer).weight)  # it learned
    checkpoint = sorted((tmp_path / "run" / "checkpoints").iterdir())[-1]
    assert (checkpoint / f"{config.export_name}_control_lora_rank2.safetensors").is_file()


def test_lora_training_resumes_to_the_last_bit(tiny_base, image_folder, tmp_path):
    """A killed LoRA run resumes with the same batches, noise and optimiser state: its losses and weights agree with
    an uninterrupted run's to float rounding: the first resumed loss bit for bit, then about one unit in the last place
    (a full run's agree bit for bit; a LoRA run's drift starts in the first resumed step's gradients)."""
    from tests.test_train_loop import run_until, weights
    from training.loop import Trainer

    common = dict(max_train_steps=4, checkpointing_steps=2, use_ema=True, lora_rank=2)
    straight = Trainer(tiny_config(tiny_base, image_folder, tmp_path / "a", **common)).run()
    assert run_until(tiny_config(tiny_base, image_folder, tmp_path / "b", **common), stop_at=3) is None
    resumed = Trainer(tiny_config(tiny_base, image_folder, tmp_path / "b", resume_from_checkpoint="latest",
                                  **common)).run()
    assert resumed.step == 4 and resumed.losses[0] == straight.losses[2]
    assert resumed.losses == pytest.approx(straight.losses[2:], rel=1e-6)
    a, b = weights(straight.export_path), weights(resumed.export_path)
    worst = max(float((a[k].float() - b[k].float()).abs().max()) for k in a if a[k].numel())
    assert a.keys() == b.keys() and worst <= 1e-5  # measured 9e-7: a tenth of one step at this learning rate (1e-4)


def test_lora_rank_options_are_checked(tiny_base, image_folder, tmp_path):
    from training.config import ConfigError

    with pytest.raises(ConfigError, match="--lora_rank trains differences.*model.convert"):
        tiny_config(tiny_base, image_folder, tmp_path, lora_rank=4, controlnet_init=str(tmp_path / "x.safetensors")
                    ).validate()
    config = tiny_config(tiny_base, image_folder, tmp_path, lora_rank=8, export_name="m")
    assert list(config.export_files().values()) == ["m_control_lora_rank8.safetensors"]
    config = tiny_config(tiny_base, image_folder, tmp_path, lora_rank=8, export_name="m", lora_export="full")
    assert config.export_files() == {"ldm": "m.safetensors"}
    assert tiny_config(tiny_base, image_folder, tmp_path, export_name="m", lora_export="both").export_files() == {
        "ldm": "m.safetensors"}  # without --lora_rank there is no control-LoRA to export


def test_a_control_lora_as_controlnet_init_is_rebuilt_on_the_training_base(tiny_base, image_folder, tmp_path,
                                                                          controlnet_inputs):
    from diffusers import UNet2DConditionModel

    from training.loop import Trainer

    unet = UNet2DConditionModel.from_pretrained(tiny_base, subfolder="unet")
    lora = trained_lora(unet)
    path = save_checkpoint(lora, tmp_path / "init_control_lora.safetensors", layout="control_lora", dtype="fp32")
    trainer = Trainer(tiny_config(tiny_base, image_folder, tmp_path / "run", controlnet_init=str(path)))
    trainer._setup()
    started = trainer.accelerator.unwrap_model(trainer.controlnet)
    assert max_difference(residuals_of(lora, controlnet_inputs), residuals_of(started, controlnet_inputs)) <= 1e-5

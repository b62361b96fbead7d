"""model/: build, save in both layouts, load, validate, convert (tiny models made in code)."""
import json
import os
import struct
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from model import (
    CheckpointError,
    build_controlnet,
    check_color_stroke,
    controlnet_residuals,
    inspect_checkpoint,
    inspect_state_dict,
    load_checkpoint,
    read_metadata,
    save_checkpoint,
    save_pretrained,
    set_middle_block_only,
    widen_controlnet,
)
from model.checkpoint import export_state_dict
from preprocessors import BLACK_ON_WHITE, HINT_FORMAT, HINT_VERSION, WHITE_ON_BLACK
from tests import helpers

REPO = Path(__file__).resolve().parent.parent


def _header(path):
    with safe_open(str(path), framework="pt") as handle:
        return handle.metadata()


@pytest.mark.parametrize("layout", ["diffusers", "ldm"])
def test_round_trip_keeps_residuals(tmp_path, tiny_controlnet, controlnet_inputs, layout):
    reference = helpers.residuals_of(tiny_controlnet, controlnet_inputs)
    assert max(float(r.abs().max()) for r in reference) > 1e-3  # zero convs are randomised: residuals are not zero
    path = save_checkpoint(tiny_controlnet, tmp_path / f"cn_{layout}.safetensors", layout=layout)
    keys = set(load_file(str(path)))
    assert any(k.startswith("control_model.zero_convs.") for k in keys) == (layout == "ldm")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # our files record their polarity: nothing is assumed
        loaded, metadata = load_checkpoint(path, family=None)
    assert metadata["layout"] == layout and metadata["hint_channels"] == 5
    assert (metadata["edge_polarity"], metadata["polarity_source"]) == (WHITE_ON_BLACK, "metadata")
    assert helpers.max_difference(reference, helpers.residuals_of(loaded, controlnet_inputs)) <= 1e-5


def test_ldm_names_agree_with_diffusers_own_converter(tiny_controlnet):
    from diffusers.loaders.single_file_utils import convert_controlnet_checkpoint

    ldm = export_state_dict(tiny_controlnet, "ldm")
    assert {k.split(".")[1] for k in ldm} == {"time_embed", "input_blocks", "middle_block", "zero_convs",
                                              "middle_block_out", "input_hint_block"}
    assert "control_model.input_hint_block.14.weight" in ldm and "control_model.middle_block_out.0.weight" in ldm
    converted = convert_controlnet_checkpoint(ldm, dict(tiny_controlnet.config))
    own = tiny_controlnet.state_dict()
    assert set(converted) == set(own)
    assert all(torch.equal(converted[k], own[k]) for k in own)


def test_whole_model_ldm_checkpoint_keeps_only_the_controlnet(tmp_path, tiny_controlnet, controlnet_inputs):
    """lllyasviel's training code saves SD and ControlNet together in a .ckpt with no metadata."""
    state = dict(export_state_dict(tiny_controlnet, "ldm"))
    state["model.diffusion_model.input_blocks.0.0.weight"] = torch.zeros(32, 4, 3, 3)
    state["first_stage_model.encoder.conv_in.weight"] = torch.zeros(8, 3, 3, 3)
    state["cond_stage_model.transformer.text_model.embeddings.position_ids"] = torch.zeros(1, 77)
    path = tmp_path / "last.ckpt"
    torch.save({"state_dict": state, "global_step": 5}, path)
    info = inspect_checkpoint(path, polarity=BLACK_ON_WHITE)
    assert info.whole_model and info.layout == "ldm"
    loaded, metadata = load_checkpoint(path, polarity=BLACK_ON_WHITE, family=None)
    assert metadata["edge_polarity"] == BLACK_ON_WHITE and metadata["polarity_source"] == "argument"
    assert helpers.max_difference(helpers.residuals_of(tiny_controlnet, controlnet_inputs),
                                  helpers.residuals_of(loaded, controlnet_inputs)) <= 1e-5


def test_torch_file_needing_pickle_is_refused(tmp_path):
    path = tmp_path / "pickled.pth"
    torch.save({"args": argparse_namespace()}, path)
    with pytest.raises(CheckpointError, match="pickle"):
        load_checkpoint(path)


def argparse_namespace():
    import argparse

    return argparse.Namespace(lr=1e-5)


@pytest.mark.parametrize("dtype, expected", [("fp16", torch.float16), ("bf16", torch.bfloat16), ("fp32", torch.float32),
                                             (torch.float16, torch.float16)])
def test_dtype_export(tmp_path, tiny_controlnet, controlnet_inputs, dtype, expected):
    path = save_checkpoint(tiny_controlnet, tmp_path / "cn.safetensors", layout="ldm", dtype=dtype)
    assert {v.dtype for v in load_file(str(path)).values()} == {expected}
    assert next(tiny_controlnet.parameters()).dtype == torch.float32  # the model itself is not cast
    loaded, _ = load_checkpoint(path, family=None, dtype="fp32")
    tolerance = {torch.float32: 1e-5, torch.float16: 5e-2, torch.bfloat16: 2e-1}[expected]
    assert helpers.max_difference(helpers.residuals_of(tiny_controlnet, controlnet_inputs),
                                  helpers.residuals_of(loaded, controlnet_inputs)) <= tolerance


@pytest.mark.parametrize("dtype", ["fp8", "int8", torch.int64, "float64"])
def test_wrong_dtype_request_is_refused(tmp_path, tiny_controlnet, dtype):
    with pytest.raises(CheckpointError, match="fp32, fp16, bf16"):
        save_checkpoint(tiny_controlnet, tmp_path / "cn.safetensors", dtype=dtype)
    assert not (tmp_path / "cn.safetensors").exists()


def test_metadata_records_the_contract(tmp_path, tiny_controlnet):
    path = save_checkpoint(tiny_controlnet, tmp_path / "cn.safetensors", layout="ldm",
                           metadata={"edge_polarity": BLACK_ON_WHITE, "training_step": 1200})
    header = _header(path)
    assert all(isinstance(v, str) and k.startswith("colorstroke.") for k, v in header.items())
    assert header["colorstroke.hint_format"] == HINT_FORMAT
    assert header["colorstroke.hint_version"] == str(HINT_VERSION)
    assert header["colorstroke.hint_channels"] == "5"
    assert header["colorstroke.edge_polarity"] == BLACK_ON_WHITE
    assert header["colorstroke.cross_attention_dim"] == "32"
    assert header["colorstroke.layout"] == "ldm"
    assert header["colorstroke.training_step"] == "1200"
    assert json.loads(header["colorstroke.config"])["conditioning_channels"] == 5
    info = inspect_checkpoint(path, polarity=WHITE_ON_BLACK)
    assert (info.edge_polarity, info.polarity_source) == (BLACK_ON_WHITE, "metadata")  # the file wins
    assert info.training_step == 1200


def test_bad_metadata_never_crashes_a_load(tmp_path, tiny_controlnet, controlnet_inputs):
    tensors = export_state_dict(tiny_controlnet, "diffusers")
    path = tmp_path / "odd.safetensors"
    save_file(tensors, str(path), metadata={"colorstroke.config": "{not json", "colorstroke.hint_version": "abc",
                                            "colorstroke.edge_polarity": "purple", "colorstroke.training_step": "",
                                            "colorstroke.middle_block_only": "maybe", "format": "pt"})
    loaded, metadata = load_checkpoint(path, polarity=BLACK_ON_WHITE, family=None)
    assert metadata["edge_polarity"] == BLACK_ON_WHITE and metadata["hint_version"] == HINT_VERSION
    assert metadata["training_step"] is None
    assert helpers.max_difference(helpers.residuals_of(tiny_controlnet, controlnet_inputs),
                                  helpers.residuals_of(loaded, controlnet_inputs)) <= 1e-5
    # a recorded config that does not fit the tensors is ignored too
    save_file(tensors, str(path), metadata={"colorstroke.config": json.dumps({"block_out_channels": [8, 16]})})
    assert load_checkpoint(path, polarity=WHITE_ON_BLACK, family=None)[1]["edge_polarity"] == WHITE_ON_BLACK


def test_a_file_without_recorded_polarity_is_taken_as_the_original_model(tmp_path, tiny_controlnet):
    path = tmp_path / "original.safetensors"
    save_file(export_state_dict(tiny_controlnet, "ldm"), str(path))  # as lllyasviel's code leaves it: no metadata
    with pytest.warns(UserWarning, match=r"no edge polarity recorded in .*original\.safetensors'; assuming "
                                         r"black_on_white \(the original colour-stroke model\); pass "
                                         r'polarity="white_on_black" to load_checkpoint if your model was trained'):
        loaded, metadata = load_checkpoint(path, family=None)
    assert (metadata["edge_polarity"], metadata["polarity_source"]) == (BLACK_ON_WHITE, "default")
    assert loaded.colorstroke_metadata["edge_polarity"] == BLACK_ON_WHITE  # what colorize builds the hint in
    assert inspect_checkpoint(path).edge_polarity == BLACK_ON_WHITE
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the caller's choice: nothing to warn about
        _, chosen = load_checkpoint(path, polarity=WHITE_ON_BLACK, family=None)
    assert (chosen["edge_polarity"], chosen["polarity_source"]) == (WHITE_ON_BLACK, "argument")


def test_read_metadata_reads_no_tensors(tmp_path, tiny_controlnet, monkeypatch):
    path = save_checkpoint(tiny_controlnet, tmp_path / "cn.safetensors", metadata={"training_step": 7, "note": "x"})
    folder = save_pretrained(tiny_controlnet, tmp_path / "folder", metadata={"training_step": 8})
    torch.save(tiny_controlnet.state_dict(), tmp_path / "plain.pth")
    monkeypatch.setattr("model.files.read_tensors", lambda *a: pytest.fail("read the tensors"))
    monkeypatch.setattr("model.checkpoint.read_tensors", lambda *a: pytest.fail("read the tensors"))
    header = read_metadata(path)
    assert header == _header(path) and header["colorstroke.note"] == "x"
    assert read_metadata(folder)["colorstroke.training_step"] == "8"
    assert read_metadata(folder)["colorstroke.edge_polarity"] == WHITE_ON_BLACK
    assert read_metadata(tmp_path / "plain.pth") == {}
    with pytest.raises(CheckpointError, match="does not exist"):
        read_metadata(tmp_path / "absent.ckpt")


def test_save_is_atomic(tmp_path, tiny_controlnet, monkeypatch):
    path = save_checkpoint(tiny_controlnet, tmp_path / "cn.safetensors")
    before = path.read_bytes()

    def crash(tensors, filename, metadata=None):
        Path(filename).write_bytes(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr("safetensors.torch.save_file", crash)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(tiny_controlnet, path, layout="ldm")
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cn.safetensors"]  # no temp file left


@pytest.mark.parametrize("umask, file_mode, folder_mode", [(0o022, 0o644, 0o755), (0o027, 0o640, 0o750)])
def test_saved_files_honour_the_umask(tmp_path, tiny_controlnet, umask, file_mode, folder_mode):
    """A checkpoint is shared (the host runs as another user, a copy goes to a friend): written through a private
    temporary file, it still gets the mode a plain write would."""
    old = os.umask(umask)
    try:
        path = save_checkpoint(tiny_controlnet, tmp_path / "cn.safetensors")
        folder = save_pretrained(tiny_controlnet, tmp_path / "cn_folder")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == file_mode
    assert folder.stat().st_mode & 0o777 == folder_mode
    assert {f.stat().st_mode & 0o777 for f in folder.iterdir()} == {file_mode}


def test_save_into_missing_folder(tmp_path, tiny_controlnet):
    with pytest.raises(CheckpointError, match="does not exist; create it first"):
        save_checkpoint(tiny_controlnet, tmp_path / "nowhere" / "cn.safetensors")


def test_save_without_write_permission(tmp_path, tiny_controlnet, monkeypatch):
    folder = tmp_path / "locked"
    folder.mkdir()
    if os.geteuid() != 0:  # a real read-only folder; root may write anyway, so there it is simulated
        folder.chmod(0o555)
    else:
        monkeypatch.setattr("model.files.os.access", lambda *args, **kwargs: False)
    try:
        with pytest.raises(CheckpointError, match="no write permission"):
            save_checkpoint(tiny_controlnet, folder / "cn.safetensors")
    finally:
        folder.chmod(0o755)


def test_save_needs_safetensors_name(tmp_path, tiny_controlnet):
    with pytest.raises(CheckpointError, match=r"\.safetensors"):
        save_checkpoint(tiny_controlnet, tmp_path / "cn.ckpt")


def test_empty_and_truncated_files(tmp_path, tiny_controlnet):
    empty = tmp_path / "empty.safetensors"
    empty.write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty"):
        load_checkpoint(empty)
    good = save_checkpoint(tiny_controlnet, tmp_path / "good.safetensors").read_bytes()
    for cut in (4, 100, len(good) // 2, len(good) - 1):
        truncated = tmp_path / f"cut{cut}.safetensors"
        truncated.write_bytes(good[:cut])
        with pytest.raises(CheckpointError, match="truncated"):
            load_checkpoint(truncated)
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(struct.pack("<Q", 5) + b"{abc}" + b"\0" * 10)
    with pytest.raises(CheckpointError, match="corrupt"):
        inspect_checkpoint(corrupt)
    empty_ckpt = tmp_path / "empty.ckpt"
    empty_ckpt.write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty"):
        load_checkpoint(empty_ckpt)
    torch.save(tiny_controlnet.state_dict(), tmp_path / "full.pth")
    (tmp_path / "cut.pth").write_bytes((tmp_path / "full.pth").read_bytes()[:5000])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load_checkpoint(tmp_path / "cut.pth")


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "absent.safetensors")


def test_unet_and_lora_files_are_not_controlnets(tmp_path):
    unet = tmp_path / "unet.safetensors"
    save_file({k: v.contiguous() for k, v in helpers.tiny_unet().state_dict().items()}, str(unet))
    with pytest.raises(CheckpointError, match="is a UNet, not a ControlNet"):
        load_checkpoint(unet)
    lora = tmp_path / "lora.safetensors"
    save_file({"lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight": torch.zeros(4, 32),
               "lora_unet_down_blocks_0_attentions_0_proj_in.lora_up.weight": torch.zeros(32, 4)}, str(lora))
    with pytest.raises(CheckpointError, match="is a LoRA, not a ControlNet"):
        load_checkpoint(lora)
    sd = tmp_path / "sd.safetensors"
    save_file({"model.diffusion_model.input_blocks.0.0.weight": torch.zeros(1)}, str(sd))
    with pytest.raises(CheckpointError, match="Stable Diffusion model checkpoint"):
        check_color_stroke(inspect_checkpoint(sd))


def test_three_channel_controlnet_points_to_the_standard_node(tmp_path):
    three = build_controlnet(helpers.tiny_unet(), hint_channels=3)
    path = save_checkpoint(three, tmp_path / "canny.safetensors", layout="ldm")
    with pytest.raises(CheckpointError, match="3-channel .*use it as a standard ControlNet"):
        load_checkpoint(path, family=None)
    loaded, metadata = load_checkpoint(path, family=None, hint_channels=3)  # for widening
    assert metadata["hint_channels"] == 3


def test_sdxl_and_other_widths_are_refused_for_sd15(tmp_path, tiny_controlnet):
    shapes = {k: tuple(v.shape) for k, v in tiny_controlnet.state_dict().items()}
    shapes["add_embedding.linear_1.weight"] = (128, 2816)  # SDXL's added embedding makes it the SDXL family
    with pytest.raises(CheckpointError, match="is an SDXL ControlNet, but an SD 1.5 one is needed"):
        check_color_stroke(inspect_state_dict(shapes))
    assert check_color_stroke(inspect_state_dict(shapes), family=None).family == "sdxl"  # any family: tiny models
    wide = save_checkpoint(build_controlnet(helpers.tiny_unet(cross_attention_dim=1280)), tmp_path / "w.safetensors")
    with pytest.raises(CheckpointError, match="cross-attention dim 1280: 1280 is diffusers' default"):
        load_checkpoint(wide)
    with pytest.raises(CheckpointError, match="cross-attention dim 32: SD 1.5 has 768"):
        load_checkpoint(save_checkpoint(tiny_controlnet, tmp_path / "tiny.safetensors"))
    sd2 = save_checkpoint(build_controlnet(helpers.tiny_unet(cross_attention_dim=1024)), tmp_path / "sd2.safetensors")
    with pytest.raises(CheckpointError, match="is an SD 2.x ControlNet, .*SD 2.x has no Color Stroke ControlNet"):
        load_checkpoint(sd2)


def test_missing_and_unexpected_tensors_are_named(tmp_path, tiny_controlnet):
    tensors = export_state_dict(tiny_controlnet, "diffusers")
    del tensors["controlnet_down_blocks.2.bias"]
    tensors["controlnet_down_blocks.2.extra"] = torch.zeros(1)
    save_file(tensors, str(tmp_path / "broken.safetensors"))
    with pytest.raises(CheckpointError, match=r"missing: controlnet_down_blocks\.2\.bias.*unexpected: "
                                              r"controlnet_down_blocks\.2\.extra"):
        load_checkpoint(tmp_path / "broken.safetensors", family=None)


def test_inspect_checkpoint_reads_only_the_header(tmp_path, tiny_controlnet, monkeypatch):
    path = save_checkpoint(tiny_controlnet, tmp_path / "cn.safetensors", layout="ldm")
    monkeypatch.setattr("model.files.read_tensors", lambda *a: pytest.fail("read the tensors"))
    info = inspect_checkpoint(path)
    assert (info.kind, info.layout, info.hint_channels, info.cross_attention_dim) == ("controlnet", "ldm", 5, 32)


def test_widened_controlnet_matches_the_three_channel_one(controlnet_inputs):
    three = helpers.randomise_outputs(build_controlnet(helpers.tiny_unet(), hint_channels=3), seed=3)
    wide = widen_controlnet(three)
    sample, timestep, text, _ = controlnet_inputs
    edges = (torch.rand(1, 1, 64, 64, generator=torch.Generator().manual_seed(2)) > 0.8).float()
    hint5 = torch.cat([edges, torch.zeros(1, 4, 64, 64)], dim=1)
    hint3 = edges.repeat(1, 3, 1, 1)
    assert wide.controlnet_cond_embedding.conv_in.in_channels == 5
    assert helpers.max_difference(helpers.residuals_of(three, (sample, timestep, text, hint3)),
                                  helpers.residuals_of(wide, (sample, timestep, text, hint5))) <= 1e-5
    with torch.no_grad():
        assert float(wide.controlnet_cond_embedding.conv_in.weight[:, 1:].abs().max()) == 0.0
    with pytest.raises(CheckpointError, match="3-channel"):
        widen_controlnet(wide)


def test_middle_block_only_mode(tmp_path, tiny_controlnet, controlnet_inputs):
    sample, timestep, text, hint = controlnet_inputs
    set_middle_block_only(tiny_controlnet, True)
    down, mid = controlnet_residuals(tiny_controlnet, sample, timestep, text, hint)
    assert mid.shape == (1, 64, 4, 4) and len(down) == len(tiny_controlnet.controlnet_down_blocks)
    assert all(torch.count_nonzero(d) == 0 and not d.requires_grad for d in down)
    (mid.square().mean() + sum(d.sum() for d in down)).backward()
    assert all(p.grad is None for p in tiny_controlnet.controlnet_down_blocks.parameters())
    assert tiny_controlnet.controlnet_mid_block.weight.grad is not None
    path = save_checkpoint(tiny_controlnet, tmp_path / "mid.safetensors")
    loaded, metadata = load_checkpoint(path, family=None)
    assert metadata["middle_block_only"]
    assert all(torch.count_nonzero(d) == 0 for d in controlnet_residuals(loaded, sample, timestep, text, hint)[0])
    set_middle_block_only(loaded, False)  # switched back on: every residual again
    down, _ = controlnet_residuals(loaded, sample, timestep, text, hint)
    assert all(torch.count_nonzero(d) > 0 for d in down)
    down, _ = controlnet_residuals(loaded, sample, timestep, text, hint, middle_only=True)  # the mode passed in wins
    assert all(torch.count_nonzero(d) == 0 for d in down)


def test_middle_block_only_residual_reaches_the_unet(tiny_controlnet, controlnet_inputs):
    """diffusers' UNet drops the middle residual when the down residuals are None: ours must arrive."""
    sample, timestep, text, hint = controlnet_inputs
    unet = helpers.tiny_unet()
    set_middle_block_only(tiny_controlnet, True)
    with torch.no_grad():
        down, mid = controlnet_residuals(tiny_controlnet, sample, timestep, text, hint)
        plain = unet(sample, timestep, encoder_hidden_states=text).sample
        controlled = unet(sample, timestep, encoder_hidden_states=text, down_block_additional_residuals=down,
                          mid_block_additional_residual=mid).sample
    assert torch.count_nonzero(tiny_controlnet.controlnet_mid_block.weight) > 0
    assert float((controlled - plain).abs().max()) > 1e-4  # the middle residual arrives
    assert all(torch.count_nonzero(d) == 0 for d in down)
    with torch.no_grad():
        down_only = unet(sample, timestep, encoder_hidden_states=text, down_block_additional_residuals=down,
                         mid_block_additional_residual=torch.zeros_like(mid)).sample
    assert torch.equal(down_only, plain)  # the zero down residuals change nothing


def test_save_pretrained_folder_round_trip(tmp_path, tiny_controlnet, controlnet_inputs):
    folder = save_pretrained(tiny_controlnet, tmp_path / "cn", dtype="fp16", metadata={"training_step": 9})
    assert (folder / "config.json").is_file() and (folder / "colorstroke.json").is_file()
    save_pretrained(tiny_controlnet, folder, metadata={"training_step": 10})  # replaces the old folder
    loaded, metadata = load_checkpoint(folder, family=None)
    assert metadata["training_step"] == 10 and metadata["layout"] == "diffusers"
    assert helpers.max_difference(helpers.residuals_of(tiny_controlnet, controlnet_inputs),
                                  helpers.residuals_of(loaded, controlnet_inputs)) <= 1e-5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cn"]


def test_converter_command(tmp_path, tiny_controlnet, controlnet_inputs):
    source = tmp_path / "plain.safetensors"
    save_file(export_state_dict(tiny_controlnet, "diffusers"), str(source))  # no metadata of ours
    target = tmp_path / "out.safetensors"
    command = [sys.executable, "-m", "model.convert", str(source), str(target), "--layout", "ldm", "--dtype", "fp16",
               "--polarity", BLACK_ON_WHITE, "--allow-non-sd15"]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    header = _header(target)
    assert (header["colorstroke.layout"], header["colorstroke.edge_polarity"]) == ("ldm", BLACK_ON_WHITE)
    assert {v.dtype for v in load_file(str(target)).values()} == {torch.float16}
    failed = subprocess.run([sys.executable, "-m", "model.convert", str(source), str(tmp_path / "x.safetensors"),
                             "--polarity", BLACK_ON_WHITE], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert failed.returncode == 2 and "cross-attention dim 32" in failed.stderr


def test_converter_refuses_to_guess_the_polarity(tmp_path, tiny_controlnet, capsys):
    from model.convert import main

    source = tmp_path / "original.safetensors"
    save_file(export_state_dict(tiny_controlnet, "ldm"), str(source))  # no metadata, as the original model
    assert main([str(source), str(tmp_path / "out.safetensors"), "--allow-non-sd15"]) == 2
    error = capsys.readouterr().err
    assert f"{source} records no edge polarity: pass --polarity black_on_white for the original colour-stroke " \
           "model, or --polarity white_on_black" in error
    torch.save(export_state_dict(tiny_controlnet, "ldm"), tmp_path / "original.pth")  # torch files record nothing
    assert main([str(tmp_path / "original.pth"), str(tmp_path / "out"), "--layout", "pretrained",
                 "--allow-non-sd15"]) == 2
    assert "records no edge polarity" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["original.pth", "original.safetensors"], "nothing written"


@pytest.mark.parametrize("layout", ["ldm", "diffusers", "pretrained"])
def test_converter_carries_every_recorded_key(tmp_path, tiny_controlnet, layout, capsys):
    from model.convert import main

    recorded = {"edge_polarity": BLACK_ON_WHITE, "training_step": 1200, "canny_low": 75.0, "canny_high": 150.0,
                "base_model": "v1-5-pruned-emaonly.safetensors", "resolution": 512, "ema": True,
                "trainer": "training/train.py", "base_family": "sd15", "my_note": "run 3, lr 1e-5"}
    source = save_checkpoint(tiny_controlnet, tmp_path / "in.safetensors", layout="diffusers", metadata=recorded)
    target = tmp_path / ("out" if layout == "pretrained" else "out.safetensors")
    assert main([str(source), str(target), "--layout", layout, "--dtype", "fp16", "--polarity", WHITE_ON_BLACK,
                 "--allow-non-sd15"]) == 0
    assert (f"{source} records edge polarity black_on_white; --polarity white_on_black is ignored"
            in capsys.readouterr().err)
    before, after = read_metadata(source), read_metadata(target)
    for name in recorded:
        assert after["colorstroke." + name] == before["colorstroke." + name], name
    assert after["colorstroke.layout"] == ("diffusers" if layout == "pretrained" else layout)
    _, metadata = load_checkpoint(target, family=None)
    assert (metadata["edge_polarity"], metadata["polarity_source"]) == (BLACK_ON_WHITE, "metadata")

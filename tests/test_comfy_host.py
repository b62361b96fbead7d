"""Integration tests against a real ComfyUI checkout (skipped unless COMFYUI_DIR is set).

    COMFYUI_DIR=/path/to/ComfyUI python -m pytest tests/test_comfy_host.py

Needs a Python with ComfyUI's requirements plus diffusers (CPU is enough). The package is loaded the
way ComfyUI loads it (``nodes.load_custom_node`` on a folder in a temporary custom_nodes directory);
an SD 1.5-sized random ControlNet is built with ``model/`` and saved into a temporary models/controlnet
folder; the server test runs ``main.py --cpu`` on a free local port.
"""
import asyncio
import importlib
import json
import sys
import urllib.parse
import urllib.request

import numpy as np
import pytest

from tests.comfy_server import COMFYUI_DIR, EXAMPLE, EXAMPLE_SDXL, FOLDER, ROOT, comfyui_server, http, run_prompt

OURS = ("ColorStrokePainter", "ColorStrokeCanny", "LoadColorStrokeControlNet", "ApplyColorStrokeControlNet",
        "ColorStrokeLineartOverlay")
FRONTEND_ONLY = {"Note", "MarkdownNote", "Reroute", "PrimitiveNode"}

pytestmark = [pytest.mark.host, pytest.mark.skipif(not COMFYUI_DIR, reason="set COMFYUI_DIR to a ComfyUI checkout")]

torch = pytest.importorskip("torch") if COMFYUI_DIR else None


# --- ComfyUI in this process ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def comfy(tmp_path_factory):
    """ComfyUI's modules (CPU) with our package loaded through its custom-node loader."""
    sys.path.insert(0, COMFYUI_DIR)
    from comfy.cli_args import args

    args.cpu = True
    import comfy.controlnet
    import comfy.model_base
    import folder_paths
    import nodes

    assert hasattr(nodes, "ControlNetApplyAdvanced"), f"'nodes' resolved to {nodes.__file__}, not ComfyUI's"
    custom = tmp_path_factory.mktemp("custom_nodes")
    (custom / FOLDER).symlink_to(ROOT, target_is_directory=True)
    assert asyncio.run(nodes.load_custom_node(str(custom / FOLDER)))
    models = tmp_path_factory.mktemp("controlnet")
    folder_paths.add_model_folder_path("controlnet", str(models), is_default=True)
    return {"nodes": nodes, "controlnet": comfy.controlnet, "model_base": comfy.model_base,
            "folder_paths": folder_paths, "models": models}


def our_module(name):
    """A module of our package as ComfyUI imported it (the package's sys.modules key is the folder path)."""
    package = next(key for key, m in sys.modules.items() if key.endswith(FOLDER) and hasattr(m, "NODE_CLASS_MAPPINGS"))
    return importlib.import_module(f"{package}.{name}")


def node(comfy, name):
    return comfy["nodes"].NODE_CLASS_MAPPINGS[name]()


@pytest.fixture(scope="module")
def reference(comfy):
    """An SD 1.5-sized random ControlNet (diffusers) whose zero convs and hint output conv are randomised,
    saved as ldm with metadata black_on_white and as diffusers without metadata."""
    from diffusers import UNet2DConditionModel
    from safetensors.torch import save_file

    model = our_module("model")
    torch.manual_seed(0)
    unet = UNet2DConditionModel(block_out_channels=(320, 640, 1280, 1280), cross_attention_dim=768)
    controlnet = model.build_controlnet(unet)
    del unet
    with torch.no_grad():
        for conv in [*controlnet.controlnet_down_blocks, controlnet.controlnet_mid_block,
                     controlnet.controlnet_cond_embedding.conv_out]:
            conv.reset_parameters()
    controlnet.eval()
    model.save_checkpoint(controlnet, comfy["models"] / "cs_ldm.safetensors", layout="ldm",
                          metadata={"edge_polarity": "black_on_white"})
    save_file(model.export_state_dict(controlnet, "diffusers"), str(comfy["models"] / "cs_nometa.safetensors"))
    return controlnet


@pytest.fixture(scope="module")
def loaded(comfy, reference):
    """cs_ldm.safetensors through our loader (option white_on_black, overruled by the metadata) and
    cs_nometa.safetensors through the stock ControlNetLoader."""
    (ours,) = node(comfy, "LoadColorStrokeControlNet").load("cs_ldm.safetensors", "white_on_black")
    (stock,) = comfy["nodes"].ControlNetLoader().load_controlnet("cs_nometa.safetensors")
    return {"ours": ours, "stock": stock}


def example(name):
    from PIL import Image

    return torch.from_numpy(np.asarray(Image.open(ROOT / "example_workflows" / name)).astype(np.float32) / 255.0)[None]


def loadimage(name):
    """IMAGE and MASK as ComfyUI's LoadImage gives them (MASK = 1 - alpha)."""
    rgba = example(name)
    return rgba[..., :3], 1.0 - rgba[..., 3] if rgba.shape[-1] == 4 else torch.zeros(1, 64, 64)


# the UNet configs of the sampled model, as ComfyUI's supported_models give them (what the family check reads)
SD15_UNET = {"context_dim": 768, "model_channels": 320}
SDXL_UNET = {"context_dim": 2048, "adm_in_channels": 2816, "model_channels": 320}


def sampled_model(comfy, unet_config=SD15_UNET):
    """A stand-in for the BaseModel a KSampler samples: its schedule and its UNet config."""
    sampling = comfy["model_base"].model_sampling(None, comfy["model_base"].ModelType.EPS)
    config = type("Config", (), {"unet_config": unet_config})()
    return type("Model", (), {"model_sampling": sampling, "model_config": config})()


def run_control(comfy, control, x, sigma, context, model=None):
    """What sampling does with a control: pre_run, then get_control on a (cond, uncond) batch; ``model``: the
    sampled model (default: ``sampled_model``)."""
    model = model or sampled_model(comfy)
    sampling = model.model_sampling
    control.pre_run(model, sampling.percent_to_sigma)
    try:
        with torch.no_grad():
            return control.get_control(x, sigma, {"c_crossattn": context}, 2, {}), sampling
    finally:
        control.cleanup()


def diffusers_residuals(controlnet, sampling, x, sigma, context, hint, scale):
    with torch.no_grad():
        down, mid = controlnet(sampling.calculate_input(sigma, x), sampling.timestep(sigma),
                               encoder_hidden_states=context,
                               controlnet_cond=hint.expand(x.shape[0], -1, -1, -1), conditioning_scale=scale,
                               return_dict=False)
    return list(down), mid


def assert_residuals(out, expected, tolerance=1e-4):
    down, mid = expected
    assert len(out["output"]) == len(down) == 12 and len(out["middle"]) == 1 and not out["input"]
    worst = max((got - want).abs().max().item()
                for got, want in zip(out["output"] + out["middle"], down + [mid], strict=True))
    scale = max(want.abs().max().item() for want in down + [mid])
    print(f"largest difference to diffusers: {worst:.2e} (largest residual {scale:.2f})")
    for got, want in zip(out["output"] + out["middle"], down + [mid], strict=True):
        assert got.shape == want.shape
    assert worst <= tolerance


# --- loading -----------------------------------------------------------------------------------------

def test_comfyui_custom_node_loader_registers_our_nodes(comfy):
    nodes = comfy["nodes"]
    for name in OURS:
        assert name in nodes.NODE_CLASS_MAPPINGS and name in nodes.NODE_DISPLAY_NAME_MAPPINGS
        assert nodes.NODE_CLASS_MAPPINGS[name].RELATIVE_PYTHON_MODULE == f"custom_nodes.{FOLDER}"
    assert FOLDER in nodes.LOADED_MODULE_DIRS


def test_loader_lists_models_and_reads_polarity_from_metadata_or_option(comfy, reference):
    loader = node(comfy, "LoadColorStrokeControlNet")
    required = type(loader).INPUT_TYPES()["required"]
    assert {"cs_ldm.safetensors", "cs_nometa.safetensors"} <= set(required["control_net_name"][0])
    assert required["polarity_if_unknown"][1]["default"] == "black_on_white", "as every host takes such a file"
    (ldm,) = loader.load("cs_ldm.safetensors", "white_on_black")  # the file's metadata wins
    (plain,) = loader.load("cs_nometa.safetensors", "black_on_white")  # no metadata: the option
    for control_net in (ldm, plain):
        assert isinstance(control_net, comfy["controlnet"].ControlNet)
        assert control_net.control_model.input_hint_block[0].weight.shape[1] == 5
    assert ldm.color_stroke_edge_polarity == "black_on_white"
    assert plain.color_stroke_edge_polarity == "black_on_white"
    (plain_wob,) = loader.load("cs_nometa.safetensors", "white_on_black")
    assert plain_wob.color_stroke_edge_polarity == "white_on_black"


def tiny_3_channel(path, layout):
    """A small 3-channel (Canny-like) ControlNet file."""
    from diffusers import ControlNetModel

    model = our_module("model")
    net = ControlNetModel(block_out_channels=(64, 128), down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                          layers_per_block=1, cross_attention_dim=768, attention_head_dim=(1, 2),
                          conditioning_channels=3)
    model.save_checkpoint(net, path, layout=layout)
    return path


def test_loader_says_what_a_wrong_file_is_and_which_node_loads_it(comfy):
    from safetensors.torch import save_file

    loader = node(comfy, "LoadColorStrokeControlNet")
    tiny_3_channel(comfy["models"] / "canny_like.safetensors", "diffusers")
    with pytest.raises(ValueError, match="3-channel.*Load ControlNet Model and Apply ControlNet"):
        loader.load("canny_like.safetensors", "black_on_white")
    save_file({"model.diffusion_model.input_blocks.0.0.weight": torch.zeros(320, 4, 3, 3)},
              str(comfy["models"] / "sd_checkpoint.safetensors"))
    with pytest.raises(ValueError, match="Stable Diffusion model checkpoint.*Load Checkpoint"):
        loader.load("sd_checkpoint.safetensors", "black_on_white")


# --- preprocessor -> loader -> apply -> get_control ------------------------------------------------

@pytest.fixture(scope="module")
def hint(comfy):
    strokes, mask = loadimage("strokes.png")
    hint, preview = node(comfy, "ColorStrokeCanny").build(example("lineart.png"), "canny", 100, 200, "no_stroke",
                                                           0xFFFFFF, strokes=strokes, strokes_mask=mask)
    assert hint.shape == (1, 5, 512, 512) and preview.shape == (1, 512, 512, 3)
    return hint


def conditioning(seed):
    generator = torch.Generator().manual_seed(seed)
    return [[torch.randn(1, 77, 768, generator=generator), {"pooled_output": None}]]


def test_apply_matches_diffusers_forward_in_the_model_polarity(comfy, reference, loaded, hint):
    control_net = loaded["ours"]
    positive, negative = conditioning(1), conditioning(2)
    pos, neg = node(comfy, "ApplyColorStrokeControlNet").apply(positive, negative, control_net, hint, 0.8, 0.0, 1.0)
    assert "control" not in positive[0][1] and "control" not in negative[0][1]  # inputs are not mutated
    control = pos[0][1]["control"]
    assert neg[0][1]["control"] is control and control is not control_net and control.previous_controlnet is None
    assert pos[0][1]["control_apply_to_uncond"] is False and pos[0][0] is positive[0][0]

    x = torch.randn(2, 4, 64, 64, generator=torch.Generator().manual_seed(3))
    sigma = torch.full((2,), 4.0)
    context = torch.cat([positive[0][0], negative[0][0]])
    out, sampling = run_control(comfy, control, x, sigma, context)
    black_on_white = hint.clone()
    black_on_white[:, 0] = 1.0 - hint[:, 0]
    assert_residuals(out, diffusers_residuals(reference, sampling, x, sigma, context, black_on_white, 0.8))
    assert hint[0, 0].max() == 1 and hint[0, 0].float().mean() < 0.5  # the node's hint is left as it was


def test_apply_chains_after_a_stock_controlnet_and_sums_both(comfy, reference, loaded, hint):
    stock_net, control_net = loaded["stock"], loaded["ours"]
    image = torch.rand(1, 512, 512, 5, generator=torch.Generator().manual_seed(4))
    positive, negative = conditioning(1), conditioning(2)
    pos1, neg1 = comfy["nodes"].ControlNetApplyAdvanced().apply_controlnet(
        positive, negative, stock_net, image, 0.5, 0.0, 1.0)
    pos2, neg2 = node(comfy, "ApplyColorStrokeControlNet").apply(pos1, neg1, control_net, hint, 0.8, 0.0, 1.0)
    first, second = pos1[0][1]["control"], pos2[0][1]["control"]
    assert second.previous_controlnet is first and neg2[0][1]["control"] is second
    assert pos1[0][1]["control"] is first  # the stock node's output is not mutated

    x = torch.randn(2, 4, 64, 64, generator=torch.Generator().manual_seed(5))
    sigma = torch.full((2,), 2.0)
    context = torch.cat([positive[0][0], negative[0][0]])
    out, sampling = run_control(comfy, second, x, sigma, context)
    black_on_white = hint.clone()
    black_on_white[:, 0] = 1.0 - hint[:, 0]
    stock_down, stock_mid = diffusers_residuals(reference, sampling, x, sigma, context, image.movedim(-1, 1), 0.5)
    ours_down, ours_mid = diffusers_residuals(reference, sampling, x, sigma, context, black_on_white, 0.8)
    assert_residuals(out, ([a + b for a, b in zip(stock_down, ours_down, strict=True)], stock_mid + ours_mid))


def test_stroke_guidance_gives_the_negative_side_the_drawing_without_strokes(comfy, reference, loaded, hint):
    control_net = loaded["ours"]
    positive, negative = conditioning(1), conditioning(2)
    apply = node(comfy, "ApplyColorStrokeControlNet")
    pos, neg = apply.apply(positive, negative, control_net, hint, 0.8, 0.0, 1.0, stroke_guidance=True)
    ours_positive, ours_negative = pos[0][1]["control"], neg[0][1]["control"]
    assert ours_positive is not ours_negative  # ComfyUI runs the two sides apart, each with its own hint
    with_strokes, without = ours_positive.cond_hint_original, ours_negative.cond_hint_original
    assert float(with_strokes[:, 4].max()) == 1.0 and float(without[:, 1:].abs().max()) == 0.0
    assert torch.equal(with_strokes[:, 0], without[:, 0]) and float(without[:, 0].mean()) > 0.5  # black on white

    x = torch.randn(2, 4, 64, 64, generator=torch.Generator().manual_seed(6))
    sigma = torch.full((2,), 4.0)
    context = torch.cat([negative[0][0]] * 2)
    out, sampling = run_control(comfy, ours_negative, x, sigma, context)
    bare = hint.clone()
    bare[:, 0] = 1.0 - hint[:, 0]
    bare[:, 1:] = 0
    assert_residuals(out, diffusers_residuals(reference, sampling, x, sigma, context, bare, 0.8))

    stock, _ = comfy["nodes"].ControlNetApplyAdvanced().apply_controlnet(
        positive, negative, loaded["stock"], torch.rand(1, 64, 64, 5), 0.5, 0.0, 1.0)
    pos, neg = apply.apply(stock, stock, control_net, hint, 0.8, 0.0, 1.0, stroke_guidance=True)
    assert pos[0][1]["control"].previous_controlnet is neg[0][1]["control"].previous_controlnet \
        is stock[0][1]["control"]  # both sides stack on what came before


def test_apply_percent_range_and_strength_0_behave_as_the_stock_node(comfy, loaded, hint):
    control_net = loaded["ours"]
    apply = node(comfy, "ApplyColorStrokeControlNet")
    positive, negative = conditioning(1), conditioning(2)
    assert apply.apply(positive, negative, control_net, hint, 0.0, 0.0, 1.0) == (positive, negative)
    pos, _ = apply.apply(positive, negative, control_net, hint, 1.0, 0.5, 1.0)
    stock, _ = comfy["nodes"].ControlNetApplyAdvanced().apply_controlnet(
        positive, negative, control_net, hint.movedim(1, -1), 1.0, 0.5, 1.0)
    assert pos[0][1]["control"].timestep_percent_range == stock[0][1]["control"].timestep_percent_range == (0.5, 1.0)
    x = torch.randn(2, 4, 8, 8)
    out, _ = run_control(comfy, pos[0][1]["control"], x, torch.full((2,), 14.0), torch.randn(2, 77, 768))
    assert out is None  # a high sigma lies in the first half of sampling: not active yet


def test_apply_refuses_a_3_channel_controlnet_before_sampling(comfy, tmp_path, hint):
    control_net = comfy["controlnet"].load_controlnet(str(tiny_3_channel(tmp_path / "tiny.safetensors", "ldm")))
    assert control_net is not None
    positive, negative = conditioning(1), conditioning(2)
    with pytest.raises(ValueError, match="takes a 3-channel hint.*stock Apply ControlNet"):
        node(comfy, "ApplyColorStrokeControlNet").apply(positive, negative, control_net, hint, 1.0, 0.0, 1.0)


@pytest.mark.parametrize("stroke_guidance", [False, True])
def test_sampling_another_family_stops_naming_both(comfy, loaded, hint, stroke_guidance):
    stock, _ = comfy["nodes"].ControlNetApplyAdvanced().apply_controlnet(
        conditioning(1), conditioning(2), loaded["stock"], torch.rand(1, 64, 64, 5), 0.5, 0.0, 1.0)
    apply = node(comfy, "ApplyColorStrokeControlNet")
    pos, neg = apply.apply(stock, conditioning(2), loaded["ours"], hint, 0.8, 0.0, 1.0, stroke_guidance=stroke_guidance)
    errors = our_module("model").CheckpointError
    for side in (pos, neg):
        control = side[0][1]["control"]
        model = sampled_model(comfy, SDXL_UNET)
        with pytest.raises(errors, match="'cs_ldm.safetensors' is an SD 1.5 ControlNet, but the checkpoint being "
                                         "sampled is SDXL: use an SDXL Color Stroke ControlNet with it, or this "
                                         "ControlNet with an SD 1.5 checkpoint"):
            control.pre_run(model, model.model_sampling.percent_to_sigma)
        control.cleanup()
        model = sampled_model(comfy)
        control.pre_run(model, model.model_sampling.percent_to_sigma)  # SD 1.5: goes on
        control.cleanup()
    assert "pre_run" not in vars(stock[0][1]["control"])  # the stock ControlNet before ours is left as it was
    again, _ = apply.apply(pos, neg, loaded["ours"], hint, 0.8, 0.0, 1.0)
    assert again[0][1]["control"].previous_controlnet is pos[0][1]["control"]  # stacking keeps each copy's guard


@pytest.fixture(scope="module")
def control_lora(comfy, reference):
    """(cs_lora.safetensors: a rank-8 control-LoRA of ``reference`` with every difference moved, as diffusers runs
    it; the sampled model a KSampler would hand it: ``reference``'s copied encoder as its UNet's weights)."""
    import copy

    detection = importlib.import_module("comfy.model_detection")
    model = our_module("model")
    from_base = copy.deepcopy(reference)
    our_module("model.control_lora").add_low_rank(from_base, 8)
    generator = torch.Generator().manual_seed(4)
    with torch.no_grad():
        for name, parameter in from_base.named_parameters():
            if name.endswith(".up"):
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.02)
    model.save_checkpoint(from_base, comfy["models"] / "cs_lora.safetensors", layout="control_lora",
                          metadata={"edge_polarity": "black_on_white"})
    prefix, new_parts = "control_model.", ("input_hint_block.", "zero_convs.", "middle_block_out.")
    unet = {k[len(prefix):]: v for k, v in model.export_state_dict(reference, "ldm").items()
            if not k[len(prefix):].startswith(new_parts)}
    sampled = sampled_model(comfy)
    sampled.model_config = detection.model_config_from_unet({prefix + k: v for k, v in unet.items()}, prefix, True)
    sampled.manual_cast_dtype, sampled.get_dtype = None, lambda: torch.float32
    sampled.diffusion_model = type("UNet", (), {"state_dict": lambda: unet})
    return from_base.eval(), sampled


def test_a_control_lora_loads_applies_and_is_guarded_as_a_controlnet(comfy, control_lora, hint):
    from_base, sampled = control_lora
    (control_net,) = node(comfy, "LoadColorStrokeControlNet").load("cs_lora.safetensors", "white_on_black")
    assert isinstance(control_net, comfy["controlnet"].ControlLora)  # ComfyUI's own control-LoRA type
    positive, negative = conditioning(1), conditioning(2)
    pos, _ = node(comfy, "ApplyColorStrokeControlNet").apply(positive, negative, control_net, hint, 0.8, 0.0, 1.0)
    control = pos[0][1]["control"]
    sdxl = sampled_model(comfy, SDXL_UNET)
    with pytest.raises(our_module("model").CheckpointError, match="'cs_lora.safetensors' is an SD 1.5 ControlNet, "
                                                                  "but the checkpoint being sampled is SDXL"):
        control.pre_run(sdxl, sdxl.model_sampling.percent_to_sigma)
    x = torch.randn(2, 4, 64, 64, generator=torch.Generator().manual_seed(3))
    sigma, context = torch.full((2,), 4.0), torch.cat([positive[0][0], negative[0][0]])
    out, sampling = run_control(comfy, control, x, sigma, context, model=sampled)
    black_on_white = hint.clone()
    black_on_white[:, 0] = 1.0 - hint[:, 0]  # the polarity the file records reaches the rebuilt model
    assert_residuals(out, diffusers_residuals(from_base, sampling, x, sigma, context, black_on_white, 0.8))


def test_loader_refuses_an_sdxl_file_that_is_not_sdxl_sized(comfy):
    from training.tiny_base import tiny_sdxl_unet

    model = our_module("model")
    model.save_checkpoint(model.build_controlnet(tiny_sdxl_unet()), comfy["models"] / "cs_tiny_sdxl.safetensors")
    with pytest.raises(model.CheckpointError, match="'cs_tiny_sdxl.safetensors' has cross-attention dim 64: SDXL has "
                                                    "2048"):
        node(comfy, "LoadColorStrokeControlNet").load("cs_tiny_sdxl.safetensors", "white_on_black")


def test_overlay_crops_and_scales_the_drawing_like_controlnet_scales_the_hint(comfy):
    drawing = example("lineart.png")  # 512x512
    image = torch.full((2, 256, 384, 3), 0.5)
    (out,) = node(comfy, "ColorStrokeLineartOverlay").overlay(image, drawing, 1.0, False)
    assert out.shape == image.shape
    import comfy.utils

    lines = comfy.utils.common_upscale(drawing.movedim(-1, 1), 384, 256, "area", "center").movedim(1, -1)
    torch.testing.assert_close(out, image * lines.expand(2, -1, -1, -1))


# --- the server ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """``main.py --cpu`` with our package in custom_nodes and the example images in input/."""
    with comfyui_server(tmp_path_factory.mktemp("comfy_base")) as url:
        yield url


@pytest.fixture(scope="module")
def object_info(server):
    status, info = http(server + "/object_info", timeout=60)
    assert status == 200
    return info


def test_server_lists_our_nodes_with_their_inputs(object_info):
    for name in OURS:
        image_node = name == "ColorStrokeLineartOverlay"
        assert object_info[name]["category"] == ("image/color stroke" if image_node else "conditioning/color stroke")
        assert object_info[name]["python_module"] == f"custom_nodes.{FOLDER}"
    pre = object_info["ColorStrokeCanny"]
    assert set(pre["input"]["required"]) == {"lineart", "edge_source", "low", "high", "mask_marks", "background",
                                             "resolution"}
    assert pre["input"]["required"]["background"][1]["widgetType"] == "COLORSTROKE_COLOR"
    painter = object_info["ColorStrokePainter"]
    assert painter["input"]["required"]["strokes"][1]["widgetType"] == "COLORSTROKE_CANVAS"
    assert "color_stroke_example.png" in painter["input"]["required"]["image"][0]  # put in place for the example
    assert painter["output"] == ["IMAGE", "IMAGE", "MASK"]
    assert set(pre["input"]["optional"]) == {"strokes", "strokes_mask", "fill", "fill_gap"}
    assert pre["input"]["optional"]["fill"][1]["default"] is True
    assert pre["input"]["optional"]["fill_gap"][1]["max"] == 64
    assert pre["output"] == ["STROKE_HINT", "IMAGE"] and pre["output_name"] == ["hint", "preview"]
    apply = object_info["ApplyColorStrokeControlNet"]
    assert set(apply["input"]["required"]) == {"positive", "negative", "control_net", "hint", "strength",
                                               "start_percent", "end_percent"}
    assert set(apply["input"]["optional"]) == {"vae", "stroke_guidance"}
    assert apply["input"]["optional"]["stroke_guidance"][:1] == ["BOOLEAN"]
    assert object_info["LoadColorStrokeControlNet"]["input"]["required"]["control_net_name"][0] == []
    assert object_info["LoadColorStrokeControlNet"]["output"] == ["CONTROL_NET"]


def test_server_runs_the_preprocessor_into_preview_image(server):
    prompt = {
        "1": {"class_type": "LoadImage", "inputs": {"image": "lineart.png"}},
        "2": {"class_type": "LoadImage", "inputs": {"image": "strokes.png"}},
        "3": {"class_type": "ColorStrokeCanny", "inputs": {
            "lineart": ["1", 0], "strokes": ["2", 0], "strokes_mask": ["2", 1], "edge_source": "canny",
            "low": 100, "high": 200, "mask_marks": "no_stroke", "background": 0xFFFFFF,  # an older API prompt
            "resolution": 0}},
        "4": {"class_type": "PreviewImage", "inputs": {"images": ["3", 1]}},
    }
    entry = run_prompt(server, prompt)
    assert entry["status"]["status_str"] == "success", entry["status"]
    images = entry["outputs"]["4"]["images"]
    assert len(images) == 1 and images[0]["type"] == "temp"


def test_server_refuses_a_hint_wired_into_preview_image(server):
    prompt = {
        "1": {"class_type": "LoadImage", "inputs": {"image": "lineart.png"}},
        "3": {"class_type": "ColorStrokeCanny", "inputs": {
            "lineart": ["1", 0], "edge_source": "canny", "low": 100, "high": 200, "mask_marks": "no_stroke",
            "background": "#FFFFFF", "resolution": 0}},
        "4": {"class_type": "PreviewImage", "inputs": {"images": ["3", 0]}},
    }
    status, answer = http(server + "/prompt", {"prompt": prompt})
    assert status == 400 and "return_type_mismatch" in json.dumps(answer)


def widget_inputs(info):
    """(name, spec) of the inputs a UI workflow stores in widgets_values, in order, with the extra
    values the frontend adds (seed's control_after_generate after the seed; the upload button of an
    image_upload input after the node's other widgets)."""
    upload = False
    for group in ("required", "optional"):
        for name in info["input_order"].get(group, []):
            spec = info["input"][group][name]
            kind, options = spec[0], (spec[1] if len(spec) > 1 else {})
            if isinstance(kind, list) or kind in ("INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"):
                yield name, spec
                if options.get("control_after_generate"):
                    yield None, ["COMBO", {}]
                upload = upload or options.get("image_upload", False)
    if upload:
        yield None, ["COMBO", {}]


@pytest.mark.parametrize("example", [EXAMPLE, EXAMPLE_SDXL])
def test_example_workflow_matches_the_servers_nodes(object_info, server, example):
    workflow = json.loads((ROOT / "example_workflows" / f"{example}.json").read_text())
    by_id = {n["id"]: n for n in workflow["nodes"]}
    types = {n["type"] for n in workflow["nodes"]}
    assert set(OURS) <= types and {"Note", "CheckpointLoaderSimple", "CLIPTextEncode", "EmptyLatentImage",
                                   "KSampler", "VAEDecode", "SaveImage", "PreviewImage"} <= types
    prompt = {}
    for n in workflow["nodes"]:
        if n["type"] in FRONTEND_ONLY:
            continue
        info = object_info[n["type"]]
        inputs = {}
        for slot in n["inputs"]:
            spec = (info["input"].get("required", {}).get(slot["name"])
                    or info["input"].get("optional", {}).get(slot["name"]))
            assert spec is not None, (n["type"], slot["name"])
            assert spec[0] == slot["type"], (n["type"], slot)
        values = list(n["widgets_values"])
        widgets = list(widget_inputs(info))
        assert len(values) == len(widgets), (n["type"], values, [w[0] for w in widgets])
        for (name, _), value in zip(widgets, values, strict=True):
            if name is not None:
                inputs[name] = value
        prompt[str(n["id"])] = {"class_type": n["type"], "inputs": inputs}
    for link_id, origin, origin_slot, target, target_slot, kind in workflow["links"]:
        assert object_info[by_id[origin]["type"]]["output"][origin_slot] == kind
        slot = by_id[target]["inputs"][target_slot]
        assert slot["link"] == link_id and slot["type"] == kind
        prompt[str(target)]["inputs"][slot["name"]] = [str(origin), origin_slot]
    # ComfyUI validates the whole graph; only the model files, absent here, may be reported (the hint
    # preview branch is valid, so ComfyUI queues that part)
    status, answer = http(server + "/prompt", {"prompt": prompt})
    assert {e["class_type"] for e in answer["node_errors"].values()} == {"CheckpointLoaderSimple",
                                                                         "LoadColorStrokeControlNet"}
    for error in answer["node_errors"].values():
        for item in error["errors"]:
            assert item["type"] == "value_not_in_list", item
            assert item["extra_info"]["input_name"] in ("ckpt_name", "control_net_name"), item
    status, templates = http(server + "/workflow_templates")
    assert status == 200 and example in templates.get(FOLDER, [])
    thumbnail = f"{server}/api/workflow_templates/{FOLDER}/{urllib.parse.quote(example)}.jpg"
    with urllib.request.urlopen(thumbnail, timeout=30) as response:  # the template browser's card picture
        assert response.status == 200 and response.read(3) == b"\xff\xd8\xff"


def painter_prompt(strokes, background="#FFFFFF"):
    return {
        "1": {"class_type": "ColorStrokePainter", "inputs": {"image": "color_stroke_example.png", "strokes": strokes}},
        "2": {"class_type": "ColorStrokeCanny", "inputs": {
            "lineart": ["1", 0], "strokes": ["1", 1], "strokes_mask": ["1", 2], "edge_source": "canny", "low": 100,
            "high": 200, "mask_marks": "no_stroke", "background": background, "resolution": 0}},
        "3": {"class_type": "PreviewImage", "inputs": {"images": ["2", 1]}},
    }


def test_server_runs_the_painter_on_the_layer_file_an_api_prompt_names(server, object_info):
    entry = run_prompt(server, painter_prompt("colorstroke/color_stroke_example_strokes.png"))
    assert entry["status"]["status_str"] == "success", entry["status"]
    status, answer = http(server + "/prompt", {"prompt": painter_prompt("colorstroke/nothing-here.png")})
    assert status == 400
    assert "'colorstroke/nothing-here.png' is not in ComfyUI's input folder" in json.dumps(answer)


def test_server_shows_a_misread_layer_in_the_error_it_returns(server):
    prompt = {
        "1": {"class_type": "LoadImage", "inputs": {"image": "lineart.png"}},
        "2": {"class_type": "LoadImage", "inputs": {"image": "strokes.png"}},
        "3": {"class_type": "ColorStrokeCanny", "inputs": {
            "lineart": ["1", 0], "strokes": ["2", 0], "edge_source": "canny", "low": 100, "high": 200,
            "mask_marks": "no_stroke", "background": "#FFFFFF", "resolution": 0}},
        "4": {"class_type": "PreviewImage", "inputs": {"images": ["3", 1]}},
    }
    entry = run_prompt(server, prompt)
    assert entry["status"]["status_str"] == "error"
    error = next(message for kind, message in entry["status"]["messages"] if kind == "execution_error")
    assert "connect that Load Image's MASK to strokes_mask" in error["exception_message"]

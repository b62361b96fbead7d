"""Our checkpoint files in the real hosts' own ControlNet code (skipped unless a checkout is given).

COMFYUI_DIR: ComfyUI's ``comfy.controlnet.load_controlnet`` + ``get_control`` on both layouts.
SD_WEBUI_CONTROLNET_DIR: sd-webui-controlnet's ``scripts.cldm.ControlNet`` (needs the ``ldm`` package).
FORGE_DIR: Forge's ``backend.nn.cnets.cldm.ControlNet``.
Each loads an SD 1.5-sized and an SDXL-sized random 5-channel ControlNet (output convolutions randomised; the SDXL
one saved in fp16, 1.25 B parameters), checks the tensor names strictly and compares the residuals with diffusers'
forward (max abs difference <= 1e-4; SDXL's with the pooled text and size ids). sd-webui-controlnet builds SDXL
ControlNets with A1111's ``sgm`` package: SGM_DIR, a Stability-AI/generative-models checkout (skipped without).
Control-LoRA: an SD 1.5-sized one (rank 8, every trained tensor moved) is loaded as each host's control-LoRA type,
rebuilt on the host's stand-in for a UNet holding the base encoder's weights, and must give the residuals of the
trained model as diffusers runs it.
Slow (full size on CPU: about a minute each); run with the host's Python environment.
"""
import copy
import importlib
import logging
import os
import shutil
import sys
import types
from pathlib import Path

import pytest
import torch

from model import export_state_dict, save_checkpoint
from model.control_lora import add_low_rank
from model.keymap import LDM_PREFIX
from tests.helpers import SDXL_CONTROLNET_CONFIG

pytestmark = pytest.mark.host
TOLERANCE = 1e-4


def _checkout(variable: str) -> Path:
    folder = os.environ.get(variable)
    if not folder:
        pytest.skip(f"set {variable} to a checkout to run this host test")
    return Path(folder)


def _randomised_files(controlnet, folder, name: str, dtype=None):
    """(``controlnet`` with its output convolutions and hint output randomised, {layout: path} of it saved in
    ``dtype``); the diffusers model keeps the weights the files hold (fp16-rounded when saved in fp16)."""
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for module in [*controlnet.controlnet_down_blocks, controlnet.controlnet_mid_block,
                       controlnet.controlnet_cond_embedding.conv_out]:
            for parameter in module.parameters():
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.05)
        if dtype == "fp16":
            for parameter in controlnet.parameters():
                parameter.copy_(parameter.half().float())
    controlnet.eval()
    paths = {layout: save_checkpoint(controlnet, folder / f"{name}_{layout}.safetensors", layout, dtype=dtype)
             for layout in ("diffusers", "ldm")}
    return controlnet, paths


@pytest.fixture(scope="module")
def sd15_files(tmp_path_factory):
    """(diffusers ControlNetModel, {layout: path}) for an SD 1.5-sized random 5-channel ControlNet."""
    from diffusers import ControlNetModel

    torch.manual_seed(0)
    controlnet = ControlNetModel(conditioning_channels=5, cross_attention_dim=768)  # SD 1.5's shapes
    return _randomised_files(controlnet, tmp_path_factory.mktemp("sd15"), "control_colorstroke_sd15")


@pytest.fixture(scope="module")
def sdxl_files(tmp_path_factory):
    """The same for an SDXL-sized one (1.25 B parameters), saved in fp16; its two files (4.7 GiB) are deleted after
    the module, not left to pytest's kept temporary folders."""
    from diffusers import ControlNetModel

    torch.manual_seed(0)
    controlnet = ControlNetModel(**SDXL_CONTROLNET_CONFIG)
    folder = tmp_path_factory.mktemp("sdxl")
    yield _randomised_files(controlnet, folder, "control_colorstroke_sdxl", "fp16")
    shutil.rmtree(folder)


def _inputs(controlnet, family: str, seed: int = 2):
    """(latents 1x4x8x8, hint 1x5x64x64 in [0, 1], text 1x77xD, the diffusers call's extra arguments, the original
    layout's): SDXL's are the pooled text and size ids (``added_cond_kwargs``) and the ``y`` its ``label_emb`` takes,
    the pooled text beside the size ids' sinusoidal embedding (2816 wide)."""
    generator = torch.Generator().manual_seed(seed)
    sample, hint = torch.randn(1, 4, 8, 8, generator=generator), torch.rand(1, 5, 64, 64, generator=generator)
    text = torch.randn(1, 77, controlnet.config.cross_attention_dim, generator=generator)
    if family != "sdxl":
        return sample, hint, text, {}, {}
    pooled, time_ids = torch.randn(1, 1280, generator=generator), torch.tensor([[96.0, 80.0, 8.0, 0.0, 64.0, 64.0]])
    with torch.no_grad():
        y = torch.cat([pooled, controlnet.add_time_proj(time_ids.flatten()).reshape(1, -1)], dim=1)
    return sample, hint, text, {"added_cond_kwargs": {"text_embeds": pooled, "time_ids": time_ids}}, {"y": y}


def _diffusers_residuals(controlnet, sample, timestep, text, hint, **extra):
    with torch.no_grad():
        down, mid = controlnet(sample, timestep, encoder_hidden_states=text, controlnet_cond=hint, return_dict=False,
                               **extra)
    return list(down), mid


def _largest_difference(ours, theirs) -> float:
    assert len(ours) == len(theirs)
    return max(float((a.float() - b.float()).abs().max()) for a, b in zip(ours, theirs, strict=True))


FAMILIES = pytest.mark.parametrize("family", ["sd15", "sdxl"])
LAYOUTS = pytest.mark.parametrize("layout", ["diffusers", "ldm"])


@FAMILIES
@LAYOUTS
def test_comfyui_loads_and_matches(request, family, layout, caplog):
    sys.path.insert(0, str(_checkout("COMFYUI_DIR")))
    from comfy.cli_args import args

    args.cpu = True
    import comfy.controlnet
    import comfy.model_sampling

    controlnet, paths = request.getfixturevalue(f"{family}_files")
    with caplog.at_level(logging.DEBUG):
        control = comfy.controlnet.load_controlnet(str(paths[layout]))
    assert control is not None, caplog.text
    assert "missing controlnet keys" not in caplog.text and "unexpected controlnet keys" not in caplog.text
    assert "leftover keys" not in caplog.text
    model = control.control_model
    assert model.input_hint_block[0].weight.shape[1] == 5
    expected = {k[len("control_model."):] for k in export_state_dict(controlnet, "ldm")}
    assert set(model.state_dict()) == expected
    model.float()  # ComfyUI keeps an fp16 file's weights on CPU and casts per layer; compare in fp32

    class Sampling(comfy.model_sampling.ModelSamplingDiscrete, comfy.model_sampling.EPS):
        pass

    sampling = Sampling()  # SD's schedule (ComfyUI's default for a config-less model)
    sample, hint, text, extra, ldm_extra = _inputs(controlnet, family)
    control.set_cond_hint(hint, strength=1.0)
    control.pre_run(types.SimpleNamespace(model_sampling=sampling), sampling.percent_to_sigma)
    sigma = sampling.sigma(torch.tensor([500.0]))
    with torch.no_grad():
        theirs = control.get_control(sample, sigma, {"c_crossattn": text, **ldm_extra}, 1, {})
    down, mid = _diffusers_residuals(controlnet, sampling.calculate_input(sigma, sample), sampling.timestep(sigma),
                                     text, hint, **extra)
    assert len(theirs["output"]) == len(down) == (9 if family == "sdxl" else 12)
    difference = _largest_difference(down + [mid], theirs["output"] + theirs["middle"])
    print(f"ComfyUI {family} {layout}: max abs difference {difference:.3g}")
    assert difference <= TOLERANCE
    assert max(float(r.abs().max()) for r in down) > 1e-2  # the comparison is not between zeros
    control.cleanup()


def _assert_ldm_network_matches(network, controlnet, family: str, name: str) -> None:
    """A host's ldm ControlNet has our ldm file's names and shapes (hosts load with strict=False, so check
    strictly here) and gives the diffusers model's residuals (13 for SD 1.5, 10 for SDXL) within TOLERANCE."""
    ldm = {k[len("control_model."):]: tuple(v.shape) for k, v in export_state_dict(controlnet, "ldm").items()}
    assert {k: tuple(v.shape) for k, v in network.state_dict().items()} == ldm
    network.float()
    sample, hint, text, extra, ldm_extra = _inputs(controlnet, family)
    timestep = torch.tensor([500.0])
    with torch.no_grad():
        theirs = network(x=sample, hint=hint, timesteps=timestep, context=text, **ldm_extra)
    down, mid = _diffusers_residuals(controlnet, sample, timestep, text, hint, **extra)
    assert len(theirs) == len(down) + 1
    difference = _largest_difference(down + [mid], [t.float() for t in theirs])
    print(f"{name}: max abs difference {difference:.3g}")
    assert difference <= TOLERANCE


def _stub_modules(monkeypatch, names: dict) -> None:
    """Put stand-ins for the webui's ``modules`` package (``{"modules.devices": {attr: value}}``) in sys.modules."""
    package = types.ModuleType("modules")
    package.__path__ = []
    monkeypatch.setitem(sys.modules, "modules", package)
    for name, attributes in names.items():
        module = types.ModuleType(name)
        module.__dict__.update(attributes)
        monkeypatch.setitem(sys.modules, name, module)
        setattr(package, name.split(".", 1)[1], module)


def _use_checkout(monkeypatch, folder: Path, packages) -> None:
    """Import ``packages`` from ``folder`` (this repo has a ``scripts`` folder of its own, so forget cached ones)."""
    monkeypatch.syspath_prepend(str(folder))
    for name in list(sys.modules):
        if name.split(".")[0] in packages:
            monkeypatch.delitem(sys.modules, name)
    importlib.invalidate_caches()


@pytest.fixture
def webui_controlnet(monkeypatch):
    """sd-webui-controlnet's ``scripts`` package on minimal ``modules`` stand-ins (CPU, fp32)."""
    folder = _checkout("SD_WEBUI_CONTROLNET_DIR")
    try:
        importlib.import_module("ldm.modules.diffusionmodules.openaimodel")
    except ImportError:
        pytest.skip("sd-webui-controlnet needs the webui's ldm package: pip install --no-deps stable-diffusion-sdkit")
    cpu = torch.device("cpu")
    _stub_modules(monkeypatch, {
        "modules.devices": {"get_device_for": lambda task: cpu, "device": cpu, "dtype_unet": torch.float32,
                            "torch_gc": lambda: None},
        "modules.shared": {"cmd_opts": types.SimpleNamespace(controlnet_loglevel="INFO",
                                                             controlnet_preprocessor_cache_size=0),
                           "opts": types.SimpleNamespace(data={})},
    })
    _use_checkout(monkeypatch, folder, ("scripts",))
    return folder


@pytest.fixture
def webui_controlnet_sgm(webui_controlnet, monkeypatch):
    """``webui_controlnet`` with A1111's ``sgm`` (Stability-AI/generative-models), from which sd-webui-controlnet
    builds SDXL ControlNets (the ``ldm`` package builds no transformer deeper than 1). SGM_DIR: the folder holding
    the ``sgm`` package. Its package ``__init__``s import the training and conditioning stack A1111 installs
    (lightning, open_clip); only the model code is needed, so ``sgm`` and ``sgm.modules`` are bare packages here."""
    folder = _checkout("SGM_DIR") / "sgm"
    for name, path in (("sgm", folder), ("sgm.modules", folder / "modules")):
        package = types.ModuleType(name)
        package.__path__ = [str(path)]
        monkeypatch.setitem(sys.modules, name, package)
    monkeypatch.delitem(sys.modules, "scripts.cldm", raising=False)
    assert importlib.import_module("scripts.cldm").using_sgm
    return webui_controlnet


@FAMILIES
@LAYOUTS
def test_sd_webui_controlnet_loads_and_matches(request, family, layout):
    from safetensors.torch import load_file

    request.getfixturevalue("webui_controlnet_sgm" if family == "sdxl" else "webui_controlnet")
    guess = importlib.import_module("scripts.controlnet_model_guess")
    controlnet, paths = request.getfixturevalue(f"{family}_files")
    state = load_file(str(paths[layout]))  # as scripts/utils.py load_state_dict reads a .safetensors file
    control = guess.build_model_by_guess(dict(state), None, str(paths[layout]))
    assert control.type == guess.ControlModelType.ControlNet
    network = control.model.control_model
    assert network.input_hint_block[0].weight.shape[1] == 5
    network.eval()
    _assert_ldm_network_matches(network, controlnet, family, f"sd-webui-controlnet {family} {layout}")


@pytest.fixture
def forge(monkeypatch):
    """Forge's ``backend`` and ``modules_forge`` on CPU, with a stand-in for ``modules.paths_internal``.

    Forge clones huggingface_guess at launch; give its folder in FORGE_HUGGINGFACE_GUESS_DIR (the folder
    that holds the ``huggingface_guess`` package) when the checkout has none.
    """
    folder = _checkout("FORGE_DIR")
    extra = os.environ.get("FORGE_HUGGINGFACE_GUESS_DIR") or str(folder / "repositories" / "huggingface_guess")
    if not (Path(extra) / "huggingface_guess").is_dir():
        pytest.skip("Forge needs huggingface_guess: set FORGE_HUGGINGFACE_GUESS_DIR")
    _stub_modules(monkeypatch, {"modules.paths_internal": {"models_path": str(folder / "models")}})
    for path in (extra, folder / "packages_3rdparty", folder):
        monkeypatch.syspath_prepend(str(path))
    _use_checkout(monkeypatch, folder, ("backend", "modules_forge", "huggingface_guess", "gguf"))
    importlib.import_module("backend.args").args.always_cpu = True
    return folder


@FAMILIES
@LAYOUTS
def test_forge_loads_and_matches(request, forge, family, layout):
    from safetensors.torch import load_file

    supported = importlib.import_module("modules_forge.supported_controlnet")
    controlnet, paths = request.getfixturevalue(f"{family}_files")
    patcher = supported.ControlNetPatcher.try_build_from_state_dict(load_file(str(paths[layout])), str(paths[layout]))
    assert isinstance(patcher, supported.ControlNetPatcher)
    _assert_ldm_network_matches(patcher.model_patcher.control_model, controlnet, family, f"Forge {family} {layout}")


NEW_LDM_PARTS = ("input_hint_block.", "zero_convs.", "middle_block_out.")


@pytest.fixture(scope="module")
def sd15_control_lora(tmp_path_factory):
    """(the trained low-rank ControlNet as diffusers runs it, the plain ControlNet it started from, its control-LoRA
    file, the base encoder's tensors under a UNet's ldm names: what a host's SD 1.5 UNet holds of it). Every trained
    tensor is moved (up, down, biases, norms, the new parts), so a host that took any from elsewhere would differ."""
    from diffusers import ControlNetModel

    torch.manual_seed(0)
    base = ControlNetModel(conditioning_channels=5, cross_attention_dim=768).eval()  # stands for the UNet's encoder
    trained = copy.deepcopy(base)
    add_low_rank(trained, 8)
    generator = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for parameter in trained.parameters():
            if parameter.requires_grad:
                parameter.add_(torch.randn(parameter.shape, generator=generator) * 0.02)
    trained.eval()
    path = save_checkpoint(trained, tmp_path_factory.mktemp("sd15_lora") / "control_lora.safetensors", "control_lora")
    unet = {k[len(LDM_PREFIX):]: v for k, v in export_state_dict(base, "ldm").items()
            if not k[len(LDM_PREFIX):].startswith(NEW_LDM_PARTS)}
    return trained, base, path, unet


def _assert_control_lora_matches(theirs, trained, base, name: str, sample, timestep) -> None:
    """The host's residuals (13, SD 1.5) equal the trained model's for the same ``sample`` and ``timestep`` (as the
    host's ControlNet saw them) within TOLERANCE, and are not the base's."""
    _, hint, text, _, _ = _inputs(trained, "sd15")
    down, mid = _diffusers_residuals(trained, sample, timestep, text, hint)
    base_down, base_mid = _diffusers_residuals(base, sample, timestep, text, hint)
    difference = _largest_difference(down + [mid], [t.float() for t in theirs])
    apart = _largest_difference(down + [mid], base_down + [base_mid])
    print(f"{name}: max abs difference {difference:.3g} (the base's residuals are {apart:.3g} away)")
    assert difference <= TOLERANCE
    assert apart > 100 * TOLERANCE  # the low-rank differences and full tensors matter


def test_comfyui_loads_control_lora_and_matches(sd15_control_lora):
    sys.path.insert(0, str(_checkout("COMFYUI_DIR")))
    from comfy.cli_args import args

    args.cpu = True
    import comfy.controlnet
    import comfy.model_detection
    import comfy.model_sampling

    trained, base, path, unet = sd15_control_lora
    control = comfy.controlnet.load_controlnet(str(path))
    assert isinstance(control, comfy.controlnet.ControlLora)

    class Sampling(comfy.model_sampling.ModelSamplingDiscrete, comfy.model_sampling.EPS):
        pass

    sampling = Sampling()
    model_config = comfy.model_detection.model_config_from_unet({LDM_PREFIX + k: v for k, v in unet.items()},
                                                                LDM_PREFIX, True)
    sampled = types.SimpleNamespace(model_config=model_config, manual_cast_dtype=None, get_dtype=lambda: torch.float32,
                                    diffusion_model=types.SimpleNamespace(state_dict=lambda: unet),
                                    model_sampling=sampling)
    sample, hint, text, _, _ = _inputs(trained, "sd15")
    control.set_cond_hint(hint, strength=1.0)
    control.pre_run(sampled, sampling.percent_to_sigma)
    sigma = sampling.sigma(torch.tensor([500.0]))
    with torch.no_grad():
        theirs = control.get_control(sample, sigma, {"c_crossattn": text}, 1, {})
    _assert_control_lora_matches(theirs["output"] + theirs["middle"], trained, base, "ComfyUI control-LoRA",
                                 sampling.calculate_input(sigma, sample), sampling.timestep(sigma))
    control.cleanup()


def test_sd_webui_controlnet_loads_control_lora_and_matches(sd15_control_lora, webui_controlnet):
    from safetensors.torch import load_file

    guess = importlib.import_module("scripts.controlnet_model_guess")
    lora = importlib.import_module("scripts.controlnet_lora")
    trained, base, path, unet = sd15_control_lora
    control = guess.build_model_by_guess(load_file(str(path)), None, str(path))
    assert control.type == guess.ControlModelType.ControlLoRA
    network = control.model.control_model.float().eval()
    # the webui's UNet: any module with the UNet's names holding the base's weights (the extension binds by name)
    full = save_checkpoint(base, path.with_name("base_ldm.safetensors"), "ldm")
    stand_in = guess.build_model_by_guess(load_file(str(full)), None, str(full)).model.control_model.float()
    lora.bind_control_lora(stand_in, network)
    sample, hint, text, _, _ = _inputs(trained, "sd15")
    timestep = torch.tensor([500.0])
    with torch.no_grad():
        theirs = network(x=sample, hint=hint, timesteps=timestep, context=text)
    _assert_control_lora_matches(theirs, trained, base, "sd-webui-controlnet control-LoRA", sample, timestep)


def test_forge_loads_control_lora_and_matches(sd15_control_lora, forge):
    from safetensors.torch import load_file

    supported = importlib.import_module("modules_forge.supported_controlnet")
    patcher_module = importlib.import_module("backend.patcher.controlnet")
    guess = importlib.import_module("huggingface_guess.detection")
    trained, base, path, unet = sd15_control_lora
    patcher = supported.ControlNetPatcher.try_build_from_state_dict(load_file(str(path)), str(path))
    control = patcher.model_patcher
    assert isinstance(control, patcher_module.ControlLora)
    config = guess.model_config_from_unet({LDM_PREFIX + k: v for k, v in unet.items()}, LDM_PREFIX, True).unet_config
    sampled = types.SimpleNamespace(diffusion_model=types.SimpleNamespace(config=dict(config), state_dict=lambda: unet),
                                    storage_dtype=torch.float32, computation_dtype=torch.float32, predictor=None)
    control.pre_run(sampled, lambda percent: percent)
    sample, hint, text, _, _ = _inputs(trained, "sd15")
    timestep = torch.tensor([500.0])
    with torch.no_grad():
        theirs = control.control_model(x=sample, hint=hint, timesteps=timestep, context=text)
    _assert_control_lora_matches(theirs, trained, base, "Forge control-LoRA", sample, timestep)

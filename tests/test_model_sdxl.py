"""SDXL-family Color Stroke ControlNets in model/: built from an SDXL-shaped UNet (tiny, made in code), saved in both
layouts, loaded with the family asked for, and refused, naming both families, when another family is asked for."""
import pytest
import torch
from safetensors.torch import load_file

from model import CheckpointError, build_controlnet, inspect_checkpoint, load_checkpoint, save_checkpoint
from model.checkpoint import export_state_dict, infer_config
from tests import helpers
from training.tiny_base import TINY_SDXL_POOLED_DIM, tiny_sdxl_unet


@pytest.fixture(scope="module")
def sdxl_controlnet():
    return helpers.randomise_outputs(build_controlnet(tiny_sdxl_unet()))


@pytest.fixture(scope="module")
def sdxl_inputs():
    generator = torch.Generator().manual_seed(3)
    added = {"text_embeds": torch.randn(2, TINY_SDXL_POOLED_DIM, generator=generator),
             "time_ids": torch.tensor([[64.0, 64, 0, 0, 64, 64], [96, 80, 8, 0, 64, 64]])}
    return (torch.randn(2, 4, 8, 8, generator=generator), torch.tensor([10, 700]),
            torch.randn(2, 7, 64, generator=generator), torch.rand(2, 5, 64, 64, generator=generator), added)


@pytest.mark.parametrize("layout", ["diffusers", "ldm"])
def test_an_sdxl_controlnet_round_trips_in_both_layouts(tmp_path, sdxl_controlnet, sdxl_inputs, layout):
    reference = helpers.residuals_of(sdxl_controlnet, sdxl_inputs)
    assert max(float(r.abs().max()) for r in reference) > 1e-3
    path = save_checkpoint(sdxl_controlnet, tmp_path / f"sdxl_{layout}.safetensors", layout=layout)
    if layout == "ldm":
        assert "control_model.label_emb.0.0.weight" in load_file(str(path))  # the added embedding's original name
    info = inspect_checkpoint(path)
    assert (info.family, info.cross_attention_dim, info.layout) == ("sdxl", 64, layout)
    loaded, metadata = load_checkpoint(path, family=None)
    assert metadata["family"] == "sdxl" and metadata["base_family"] == "sdxl"
    assert loaded.config.addition_embed_type == "text_time"
    assert helpers.max_difference(reference, helpers.residuals_of(loaded, sdxl_inputs)) <= 1e-5


def test_sdxl_ldm_names_agree_with_diffusers_own_converter(sdxl_controlnet):
    """diffusers' ControlNet converter maps every layer but the added embedding, whose names its table gives."""
    from diffusers.loaders.single_file_utils import DIFFUSERS_TO_LDM_MAPPING, convert_controlnet_checkpoint

    ldm = export_state_dict(sdxl_controlnet, "ldm")
    converted = convert_controlnet_checkpoint(ldm, dict(sdxl_controlnet.config))
    own = sdxl_controlnet.state_dict()
    added = DIFFUSERS_TO_LDM_MAPPING["controlnet"]["addition_embed_type"]
    assert set(converted) == set(own) - set(added)
    assert all(torch.equal(converted[k], own[k]) for k in converted)
    assert all(torch.equal(ldm["control_model." + ldm_name], own[name]) for name, ldm_name in added.items())


def test_a_family_other_than_the_one_asked_for_is_refused_naming_both(tmp_path, sdxl_controlnet, tiny_controlnet):
    sdxl = save_checkpoint(sdxl_controlnet, tmp_path / "sdxl.safetensors", layout="ldm")
    with pytest.raises(CheckpointError, match="is an SDXL ControlNet, but an SD 1.5 one is needed here: use an "
                                              "SD 1.5 Color Stroke ControlNet with it, or this ControlNet with an "
                                              "SDXL checkpoint \\(SDXL, Illustrious, NoobAI, Pony\\)"):
        load_checkpoint(sdxl)  # SD 1.5 is the default family
    with pytest.raises(CheckpointError, match="cross-attention dim 64: SDXL has 2048"):
        load_checkpoint(sdxl, family="sdxl")  # the right family, but a tiny model no host can use
    sd15 = save_checkpoint(tiny_controlnet, tmp_path / "sd15.safetensors")
    with pytest.raises(CheckpointError, match="is an SD 1.5 ControlNet, but an SDXL one is needed here"):
        load_checkpoint(sd15, family="sdxl")
    with pytest.raises(ValueError, match="unknown base family 'sd3'"):
        load_checkpoint(sd15, family="sd3")


def test_a_full_size_sdxl_controlnet_without_a_recorded_config_is_rebuilt_from_its_shapes():
    """SDXL's own numbers (levels 320/640/1280, transformer depths 1/2/10, a head per 64 channels, the 2816-wide
    added embedding), built without memory on the meta device: the shapes give back the config."""
    from accelerate import init_empty_weights
    from diffusers import ControlNetModel

    sdxl = dict(block_out_channels=[320, 640, 1280], down_block_types=["DownBlock2D", "CrossAttnDownBlock2D",
                                                                       "CrossAttnDownBlock2D"],
                transformer_layers_per_block=[1, 2, 10], attention_head_dim=[5, 10, 20], cross_attention_dim=2048,
                use_linear_projection=True, addition_embed_type="text_time", addition_time_embed_dim=256,
                projection_class_embeddings_input_dim=2816, conditioning_channels=5, layers_per_block=2)
    with init_empty_weights():
        model = ControlNetModel(**sdxl)
    inferred = infer_config(model.state_dict())
    for name, value in sdxl.items():
        assert list(inferred[name]) == value if isinstance(value, list) else inferred[name] == value, name

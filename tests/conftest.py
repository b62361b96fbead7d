"""Fixtures shared across the test modules."""
import numpy as np
import pytest


@pytest.fixture
def rng():
    """A seeded numpy Generator, fresh for each test."""
    return np.random.default_rng(1234)


# --- tiny diffusers models for the model/ tests (built in code, no download) ---------------------------

TINY_CROSS_ATTENTION_DIM = 32


def tiny_unet(cross_attention_dim: int = TINY_CROSS_ATTENTION_DIM, seed: int = 0):
    """A random SD-shaped UNet2DConditionModel: 2 levels (32, 64), 1 layer each, 8 heads, latents 4 x 8 x 8."""
    import torch
    from diffusers import UNet2DConditionModel

    torch.manual_seed(seed)
    return UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, block_out_channels=(32, 64), layers_per_block=1,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=cross_attention_dim, attention_head_dim=8, norm_num_groups=32,
    )


def randomise_outputs(controlnet, seed: int = 1, std: float = 0.1):
    """Give the zero-initialised convolutions random weights, so that comparisons of residuals mean something."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    modules = [*controlnet.controlnet_down_blocks, controlnet.controlnet_mid_block,
               controlnet.controlnet_cond_embedding.conv_out]
    with torch.no_grad():
        for module in modules:
            for parameter in module.parameters():
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * std)
    return controlnet


def residuals_of(controlnet, inputs):
    """All 1 + len(down) residuals of ``controlnet`` for ``inputs`` = (sample, timestep, text, hint), as a list."""
    import torch

    sample, timestep, text, hint = inputs
    with torch.no_grad():
        down, mid = controlnet(sample, timestep, encoder_hidden_states=text, controlnet_cond=hint, return_dict=False)
    return [*down, mid]


def max_difference(first, second) -> float:
    """Largest absolute difference between two equally long lists of tensors (compared in fp32)."""
    assert len(first) == len(second)
    return max(float((a.float() - b.float()).abs().max()) for a, b in zip(first, second, strict=True))


@pytest.fixture
def tiny_controlnet():
    """A 5-channel ControlNet built from ``tiny_unet`` with its output convolutions randomised."""
    from model import build_controlnet

    return randomise_outputs(build_controlnet(tiny_unet()))


@pytest.fixture
def controlnet_inputs():
    """(latents 1x4x8x8, timestep, text 1x7x32, hint 1x5x64x64 in [0, 1]) for the tiny models."""
    import torch

    generator = torch.Generator().manual_seed(7)
    return (torch.randn(1, 4, 8, 8, generator=generator), torch.tensor([321]),
            torch.randn(1, 7, TINY_CROSS_ATTENTION_DIM, generator=generator),
            torch.rand(1, 5, 64, 64, generator=generator))


@pytest.fixture
def helpers():
    """The tiny-model helpers above, for test modules (conftest is not importable in importlib mode)."""
    from types import SimpleNamespace

    return SimpleNamespace(tiny_unet=tiny_unet, randomise_outputs=randomise_outputs, residuals_of=residuals_of,
                           max_difference=max_difference)


# --- the trainer tests' fixtures (their helpers are in tests/train_fixtures.py) ----------------------------

@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory):
    """Path of the tiny random SD-shaped base saved as a diffusers folder (once per session)."""
    from training.tiny_base import save_tiny_base

    return save_tiny_base(tmp_path_factory.mktemp("tiny_base") / "base")


@pytest.fixture
def image_folder(tmp_path):
    """A folder of 8 small captioned PNG pictures (``write_folder``)."""
    from tests.train_fixtures import write_folder

    return write_folder(tmp_path / "images")

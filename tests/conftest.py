"""Fixtures shared across the test modules (the plain helpers they use are in tests/helpers.py)."""
import numpy as np
import pytest

from tests.helpers import TINY_CROSS_ATTENTION_DIM, randomise_outputs, tiny_unet, write_folder


@pytest.fixture
def rng():
    """A seeded numpy Generator, fresh for each test."""
    return np.random.default_rng(1234)


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


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory):
    """Path of the tiny random SD-shaped base saved as a diffusers folder (once per session)."""
    from training.tiny_base import save_tiny_base

    return save_tiny_base(tmp_path_factory.mktemp("tiny_base") / "base")


@pytest.fixture
def image_folder(tmp_path):
    """A folder of 8 small captioned PNG pictures (``write_folder``)."""
    return write_folder(tmp_path / "images")

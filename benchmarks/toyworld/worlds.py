"""The toy worlds by name: ``v1`` (flat palette colours, closed outlines: ``world``) and ``v2`` (shaded continuous
colours, outlines with gaps, detail lines: ``world_v2``). Each maps a seed and a size to a ``world.Sample``."""
from __future__ import annotations

from .world import sample
from .world_v2 import sample_v2

WORLDS = {"v1": sample, "v2": sample_v2}


def sampler(world: str):
    """The sample function of ``world`` (a key of ``WORLDS``)."""
    if world not in WORLDS:
        raise ValueError(f"unknown toy world {world!r}: choose one of {', '.join(WORLDS)}")
    return WORLDS[world]

"""The divergence guard on loss trajectories: a healthy noisy run never trips it, a diverged one does at once."""
import math

import numpy as np

from training.divergence import DivergenceGuard

# the toy world's diverged default run (AdamW beta2 0.999), steps 3516-3541: 0.006 -> 2.0 in eight steps
DIVERGED = [0.007, 0.0037, 0.0061, 0.0088, 0.0062, 0.013, 0.0102, 0.0319, 0.0267, 0.1063, 0.1018, 0.2286, 0.622,
            2.0375, 1.6692, 1.1068, 2.0055, 1.4327, 0.9176, 1.5796, 0.8944, 0.6617, 1.0145, 0.9773, 0.8737, 0.9818]


def healthy(steps: int, seed: int = 0) -> np.ndarray:
    """A falling loss with the per-step noise of a diffusion loss (log-normal, single spikes of 5x)."""
    rng = np.random.default_rng(seed)
    level = 0.05 * np.exp(-np.arange(steps) / 800) + 0.004
    spikes = np.where(rng.random(steps) < 0.01, 5.0, 1.0)
    return level * rng.lognormal(0, 0.4, steps) * spikes


def first_verdict(guard: DivergenceGuard, losses) -> int | None:
    for index, loss in enumerate(losses):
        if guard.observe(float(loss)):
            return index
    return None


def test_a_healthy_noisy_run_is_never_called_diverged():
    for seed in range(3):
        assert first_verdict(DivergenceGuard(10), healthy(3000, seed)) is None


def test_the_diverged_run_is_caught_within_fifteen_steps_of_its_start():
    losses = [*healthy(3000)[-500:], *DIVERGED]  # at the level of that run: 0.005
    index = first_verdict(DivergenceGuard(10), losses)
    assert index is not None and 500 + 5 <= index <= 500 + 5 + 15  # the jump begins at DIVERGED[5]


def test_off_and_too_short_a_history_never_stop_and_nan_is_ignored():
    assert first_verdict(DivergenceGuard(0), [*healthy(3000)[-500:], *DIVERGED]) is None
    assert first_verdict(DivergenceGuard(10), [*healthy(100)[-60:], *DIVERGED]) is None  # 86 < 20 + 100 steps
    guard = DivergenceGuard(10, recent=2, baseline=4, min_baseline=2)
    assert first_verdict(guard, [1, 1, math.nan, 1, 1, math.nan, math.inf]) is None and len(guard.losses) == 4


def test_reset_forgets_the_old_level():
    guard = DivergenceGuard(10, recent=2, baseline=10, min_baseline=4)
    first_verdict(guard, [0.001] * 10)
    guard.reset()
    assert first_verdict(guard, [0.5] * 20) is None  # a new phase's higher level is its own baseline

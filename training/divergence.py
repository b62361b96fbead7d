"""Divergence guard: notice a run whose loss has left its level for good, before it overwrites good checkpoints.

A diverged ControlNet run does not produce NaN: its loss jumps by orders of magnitude and stays there
(the toy world's default with AdamW beta2 0.999 went 0.006 -> 2.0 in eight steps and stayed near 1), and
every later checkpoint holds a model worse than the base, rotating the good ones out. The guard compares
the median loss of the last ``recent`` optimiser steps with the median of up to ``baseline`` steps before
them: a factor of 10 is far above the noise of a healthy run (at most 1.25 over a 3600-step toy run, the
edge-to-colour switch included) and was crossed 13 steps after that divergence began (the ratio reached
~230). Medians, not means: single spikes of a few steps do not count.
"""
from __future__ import annotations

import math
from collections import deque
from statistics import median


class DivergenceGuard:
    """Watches one run's losses. ``observe(loss)`` after each optimiser step; True once diverged.

    factor: the ratio of the recent median to the baseline median that counts as diverged (> 1; 0 = off);
    recent, baseline: the two windows in steps; min_baseline: steps the baseline needs before a verdict.
    NaN/inf losses (skipped steps, handled by the NaN rule) are ignored.
    """

    def __init__(self, factor: float, recent: int = 20, baseline: int = 500, min_baseline: int = 100):
        self.factor, self.recent, self.min_baseline = factor, recent, min_baseline
        self.losses: deque[float] = deque(maxlen=recent + baseline)
        self.ratio = 0.0  # the recent median over the baseline median at the last verdict (for the message)

    def reset(self) -> None:
        """Forget the history (the loss changes its meaning, e.g. where the colour phase begins)."""
        self.losses.clear()

    def observe(self, loss: float) -> bool:
        if not self.factor or not math.isfinite(loss):
            return False
        self.losses.append(loss)
        if len(self.losses) < self.recent + self.min_baseline:
            return False
        history = list(self.losses)
        self.ratio = median(history[-self.recent:]) / max(median(history[:-self.recent]), 1e-30)
        return self.ratio > self.factor

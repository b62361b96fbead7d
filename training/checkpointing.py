"""Resumable training checkpoints: written atomically, the last K kept, ``latest`` found again.

A checkpoint is the folder ``OUTPUT_DIR/checkpoints/step-NNNNNNN`` holding accelerate's state (the
ControlNet, optimiser, LR schedule, gradient scaler, python/numpy/torch RNG states, registered
objects such as the EMA) plus ``trainer_state_RANK.pt`` (step, data position, counters, the noise
generator) per process. It is written under a temporary name and renamed when complete, so a crash or
a full disk never leaves a half checkpoint where ``latest`` would find it, and the previous one stays.
"""
from __future__ import annotations

import errno
import logging
import re
import shutil
from pathlib import Path

import torch

logger = logging.getLogger(__name__)
_NAME = re.compile(r"^step-(\d+)$")


class CheckpointError(RuntimeError):
    """A checkpoint to resume from that does not exist or is incomplete."""


def checkpoint_root(output_dir) -> Path:
    return Path(output_dir) / "checkpoints"


def _numbered(output_dir) -> list[tuple[int, Path]]:
    """(step, folder) of the complete checkpoints under ``output_dir``, oldest first."""
    root = checkpoint_root(output_dir)
    if not root.is_dir():
        return []
    return sorted((int(m.group(1)), p) for p in root.iterdir() if (m := _NAME.match(p.name))
                  and (p / "trainer_state_0.pt").is_file())


def list_checkpoints(output_dir) -> list[Path]:
    """Complete checkpoints under ``output_dir``, oldest first."""
    return [p for _, p in _numbered(output_dir)]


def newest_before(output_dir, step: int) -> Path | None:
    """The newest complete checkpoint under ``output_dir`` from before optimiser step ``step``; None if none."""
    earlier = [p for saved, p in _numbered(output_dir) if saved < step]
    return earlier[-1] if earlier else None


def resolve(output_dir, which: str) -> Path:
    """The checkpoint folder ``which`` names: 'latest' or a path; CheckpointError when there is none."""
    if which == "latest":
        found = list_checkpoints(output_dir)
        if not found:
            raise CheckpointError("--resume_from_checkpoint latest: no checkpoint in "
                                  f"{str(checkpoint_root(output_dir))!r}")
        return found[-1]
    path = Path(which)
    if not (path / "trainer_state_0.pt").is_file():
        raise CheckpointError(f"{which!r} is not a complete checkpoint folder (no trainer_state_0.pt)")
    return path


def save(accelerator, output_dir, step: int, trainer_state: dict, keep: int, extra=None) -> Path | None:
    """Write checkpoint ``step``; returns its folder, or None when the disk refused (logged, the older
    checkpoints untouched). ``extra(folder)`` may add files (the exported model) before the rename."""
    root = checkpoint_root(output_dir)
    final = root / f"step-{step:07d}"
    partial = root / f".step-{step:07d}.partial"
    ok = torch.tensor(1, device=accelerator.device)
    try:
        if accelerator.is_main_process:
            shutil.rmtree(partial, ignore_errors=True)
            partial.mkdir(parents=True)
        accelerator.wait_for_everyone()
        accelerator.save_state(str(partial))
        torch.save(trainer_state, partial / f"trainer_state_{accelerator.process_index}.pt")
        if extra is not None and accelerator.is_main_process:
            extra(partial)
    except OSError as error:
        ok.zero_()
        reason = "the disk is full" if error.errno == errno.ENOSPC else str(error)
        logger.error("checkpoint at step %d was not written (%s); the previous checkpoint is kept. Free space in %s",
                     step, reason, root)
    everyone_ok = accelerator.reduce(ok, "min") if accelerator.num_processes > 1 else ok
    if not everyone_ok.item():
        if accelerator.is_main_process:
            shutil.rmtree(partial, ignore_errors=True)
        return None
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        shutil.rmtree(final, ignore_errors=True)
        partial.rename(final)
        for old in list_checkpoints(output_dir)[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    return final


def load(accelerator, folder: Path) -> dict:
    """Restore accelerate's state from ``folder`` and return this process's trainer state."""
    accelerator.load_state(str(folder))
    path = Path(folder) / f"trainer_state_{accelerator.process_index}.pt"
    if not path.is_file():
        raise CheckpointError(f"{str(folder)!r} has no {path.name}: it was written by fewer processes than run now")
    return torch.load(path, map_location="cpu", weights_only=False)

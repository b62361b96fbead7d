"""Training phases: a resumed run either continues under the options it was started with, or starts an
explicit new phase (``--new_phase``) under changed recipe options, e.g. a colour phase after an edge phase.

A checkpoint records the options that shape training (``shaping_options``); on resume they are compared
with the new ones. Options that define the model or the data position never change within a run
(start a new run from the exported file with ``--controlnet_init`` instead); the others change only with
``--new_phase``, which is recorded (step and changes) in the checkpoint and the exported file's metadata.
"""
from __future__ import annotations

import logging

from . import checkpointing, recipe
from .config import FIXED, FREE, ConfigError, option_names

logger = logging.getLogger(__name__)

# Options that do not change what is learned (free on any resume), and those that define the model, its hint or
# the data position (never changed on a resume): as each option's ``_opt(phase=...)`` in ``config`` declares it.
FREE_OPTIONS = frozenset(option_names(phase=FREE))
FIXED_OPTIONS = frozenset(option_names(phase=FIXED))


def shaping_options(options: dict) -> dict:
    """The options of a run (``TrainConfig.to_dict()``) that shape what it learns: all but ``FREE_OPTIONS``."""
    return {name: value for name, value in options.items() if name not in FREE_OPTIONS}


def changed_options(saved: dict, current: dict) -> dict:
    """{option: (saved value, current value)} for the shaping options that differ."""
    now = shaping_options(current)
    return {name: (saved.get(name), value) for name, value in now.items() if saved.get(name) != value}


def check_resume(saved: dict, current: dict, new_phase: bool) -> dict:
    """The changes a resume brings ({option: (old, new)}); raises ConfigError when one is not allowed.

    saved: the shaping options recorded in the checkpoint; current: this run's ``TrainConfig.to_dict()``.
    A fixed option may never change; other changes need ``new_phase``; ``new_phase`` with no change is
    refused too (it would record a phase that is none).
    """
    changes = changed_options(saved, current)
    fixed = sorted(name for name in changes if name in FIXED_OPTIONS)
    if fixed:
        listed = "; ".join(f"{name}: {changes[name][0]!r} -> {changes[name][1]!r}" for name in fixed)
        raise ConfigError(f"the checkpoint was trained with other {', '.join(fixed)} ({listed}); these cannot change "
                          "within a run. Resume with the checkpoint's values, or start a new run from its exported "
                          "model with --controlnet_init")
    if changes and not new_phase:
        listed = "; ".join(f"{name}: {old!r} -> {new!r}" for name, (old, new) in sorted(changes.items()))
        raise ConfigError(f"resuming with changed training options ({listed}). To continue under them as a new "
                          "phase (weights, optimiser moments and step count kept; learning rates and AdamW settings "
                          "set anew), add --new_phase; to continue the same run, resume with the checkpoint's options")
    if new_phase and not changes:
        raise ConfigError("--new_phase: no training option differs from the checkpoint's; leave --new_phase out to "
                          "continue the same run, or change the options of the new phase")
    return changes


def set_optimiser_options(optimizer, scheduler, fresh_groups: list[dict], settings: dict) -> None:
    """Give each parameter group of a resumed optimiser (whose rates and settings the checkpoint restored) the
    new phase's options: its rate as the base rate, its current rate from the schedule at the resumed step,
    and the optimiser's other ``settings`` (AdamW's betas, eps, weight decay: ``recipe.adam_settings``).

    fresh_groups: ``recipe.param_groups`` of the new options (same groups, same order); scheduler: the
    LambdaLR that diffusers' ``get_scheduler`` builds (accelerate's wrapper unwrapped).
    """
    if len(fresh_groups) != len(optimizer.param_groups):
        raise ConfigError(f"the checkpoint's optimiser has {len(optimizer.param_groups)} parameter groups, the new "
                          f"phase {len(fresh_groups)}; start a new run from its exported model with --controlnet_init")
    scheduler.base_lrs = [fresh["lr"] for fresh in fresh_groups]
    for group, fresh, factor in zip(optimizer.param_groups, fresh_groups, scheduler.lr_lambdas, strict=True):
        group.update(settings)
        group["initial_lr"], group["lr_scale"] = fresh["lr"], fresh["lr_scale"]
        group["lr"] = fresh["lr"] * factor(scheduler.last_epoch)
    scheduler._last_lr = [group["lr"] for group in optimizer.param_groups]


def resume(trainer) -> None:
    """Continue ``trainer`` (a ``loop.Trainer`` set up up to its optimiser) from ``--resume_from_checkpoint``:
    weights, optimiser, schedule and trainer state come back; changed options start a new phase (``check_resume``:
    its learning rates and AdamW settings set anew, the colour phase's step recomputed), recorded in
    ``trainer.phases``."""
    config, accelerator = trainer.config, trainer.accelerator
    folder = checkpointing.resolve(config.output_dir, config.resume_from_checkpoint)
    state = checkpointing.load(accelerator, folder)
    changes = check_resume(state.get("options", shaping_options(config.to_dict())), config.to_dict(),
                           config.new_phase)
    trainer.load_trainer_state(state)
    if "colour_phase_start" in changes:
        trainer.colour_phase_step = recipe.colour_phase_step(config.colour_phase_start, config.max_train_steps)
    if changes:
        fresh = recipe.param_groups(accelerator.unwrap_model(trainer.controlnet), config.learning_rate,
                                    config.new_parts_lr_scale)
        set_optimiser_options(trainer.optimizer, trainer.lr_scheduler.scheduler, fresh, recipe.adam_settings(config))
        trainer.phases.append({"from_step": trainer.step, "changed": {k: new for k, (_, new) in changes.items()}})
        logger.info("new phase from step %d: %s", trainer.step,
                    "; ".join(f"{k}: {old!r} -> {new!r}" for k, (old, new) in sorted(changes.items())))
    logger.info("resumed from %s at step %d", folder, trainer.step)

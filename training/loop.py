"""The training loop: frozen SD 1.5 or SDXL base, trained ControlNet, accelerate for devices and precision.

``Trainer(config).run()`` loads everything, prints a summary, trains ``max_train_steps`` optimiser
steps (checkpointing, validating and logging on the way), and exports the final ControlNet to
``OUTPUT_DIR/EXPORT_NAME.safetensors``. SIGINT/SIGTERM save a checkpoint before exiting.
"""
from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import signal
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from model import controlnet_residuals, save_checkpoint
from model.control_lora import low_rank_deltas
from model.families import family_name
from preprocessors import DEFAULT_FILL_ALPHA, default_gap, make_hint_batch, to_model_polarity, training_edges_batch

from . import checkpointing, phases, recipe
from .base_model import load_base
from .config import ConfigError, TrainConfig, option_names
from .controlnet import build as build_trained_controlnet
from .controlnet import trained_parameters
from .data import EpochBatchSampler, TrainDataset, build_source, collate, sample_spec
from .data.buckets import assign_buckets, bucket_sizes, folder_image_sizes
from .data.sampler import BucketBatchSampler
from .divergence import DivergenceGuard
from .encoders import LatentEncoder, TextEmbedder
from .validation import held_out_samples, recommended_canny, run_validation, user_samples

logger = logging.getLogger(__name__)
_DTYPES = {"no": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
_MAX_EMPTY_BATCHES = 50
# The options that make strokes set the colour (their ``_opt(recipe=True)``), recorded in every exported file.
RECIPE_OPTIONS = option_names(recipe=True)
# Where ``accelerate launch`` puts its --mixed_precision flag or the ``accelerate config`` file's choice.
LAUNCHER_PRECISION_ENV = "ACCELERATE_MIXED_PRECISION"


def resolve_mixed_precision(given: str | None, launcher: str | None, cuda: bool, bf16: bool) -> tuple[str, str]:
    """(precision "no"/"fp16"/"bf16", where it comes from) for a run.

    given: --mixed_precision (None when not passed) wins. launcher: the ``ACCELERATE_MIXED_PRECISION``
    environment variable (set by ``accelerate launch`` from its flag or ``accelerate config``; None when
    unset) comes next. Otherwise: bf16 on a CUDA GPU that supports it natively (``bf16``), fp16 on other
    CUDA GPUs (``cuda``), no mixed precision elsewhere (CPU, MPS). Raises ConfigError for a launcher
    precision this trainer has no dtype for (fp8).
    """
    if given is not None:
        return given, "--mixed_precision"
    if launcher:
        precision = launcher.strip().lower()
        if precision not in _DTYPES:
            raise ConfigError(f"{LAUNCHER_PRECISION_ENV}={launcher!r} (from accelerate launch or accelerate config) is "
                              f"not supported by this trainer; use one of {sorted(_DTYPES)}, or pass --mixed_precision")
        return precision, f"accelerate launch/config ({LAUNCHER_PRECISION_ENV})"
    if cuda:
        return ("bf16", "auto: CUDA GPU with bf16") if bf16 else ("fp16", "auto: CUDA GPU without bf16")
    return "no", "auto: no CUDA GPU"


def vae_dtype(choice: str, weight_dtype: torch.dtype, family: str, own_vae_replaced: bool) -> torch.dtype:
    """The VAE's dtype for ``--vae_dtype`` ``choice``: "fp32", "precision" (the run's ``weight_dtype``), or "auto":
    fp32 for an SDXL base's own VAE under fp16 (it overflows to NaN there, as diffusers' SDXL trainers note), the run's
    otherwise (a --vae given in its place is taken as fp16-safe)."""
    if choice == "fp32" or (choice == "auto" and family == "sdxl" and not own_vae_replaced
                            and weight_dtype == torch.float16):
        return torch.float32
    return weight_dtype


def _run_precision(given: str | None) -> tuple[str, str]:
    """``resolve_mixed_precision`` for this process's environment and GPU. The GPU is asked only when it
    decides (under accelerate launch every process would touch GPU 0); bf16 counts where it is native
    (compute capability 8, Ampere, and newer), not where torch emulates it."""
    launcher = os.environ.get(LAUNCHER_PRECISION_ENV)
    cuda = given is None and not launcher and torch.cuda.is_available()
    return resolve_mixed_precision(given, launcher, cuda, cuda and torch.cuda.get_device_capability()[0] >= 8)


class TrainingError(RuntimeError):
    """Training cannot go on (NaN losses, no usable data); the message says why and what to try."""


@dataclass
class TrainResult:
    step: int
    export_path: Path | None
    checkpoint: Path | None
    validation: list = field(default_factory=list)  # dicts of step, path, stroke_colour_error, edge_f1
    losses: list = field(default_factory=list)  # mean loss of each optimiser step, NaN where skipped
    skipped: dict = field(default_factory=dict)  # skipped samples by reason
    missing_captions: int = 0
    family: str = "sd15"  # the base's (``model.families``)


class _Stop(Exception):
    """Raised inside the loop when a signal asked to stop; the checkpoint is already written."""


class Trainer:
    """One training run. ``on_step(trainer, step)`` is called after every optimiser step (tests use it)."""

    def __init__(self, config: TrainConfig, on_step=None):
        self.config = config.validate()
        self.on_step = on_step
        self.stop_signal = None

    # ------------------------------------------------------------------ setup
    def _setup(self):
        """The run's stages in order: devices, models, data, optimiser, then the state of a resumed run."""
        report_to = self._setup_accelerator()
        controlnet = self._setup_models()
        self._setup_data()
        self._setup_optimiser(controlnet)
        self.step, self.micro_batches, self.nan_streak = 0, 0, 0
        self.skipped, self.missing_captions = {}, 0
        self.phases = []  # [{"from_step", "changed": {option: new value}}] of --new_phase resumes
        if self.config.resume_from_checkpoint:
            phases.resume(self)
        if report_to != "none":
            self.accelerator.init_trackers("color_stroke_controlnet", config={
                **_flat_config(self.config), "mixed_precision": self.mixed_precision})

    def _setup_accelerator(self) -> str:
        """The accelerator (devices, mixed precision, logging) and the seed; returns the tracker to report to."""
        from accelerate import Accelerator
        from accelerate.utils import DistributedDataParallelKwargs, ProjectConfiguration, set_seed

        config = self.config
        output = Path(config.output_dir)
        output.mkdir(parents=True, exist_ok=True)
        report_to = config.report_to
        if report_to == "tensorboard" and not _importable("tensorboard"):
            warnings.warn("tensorboard is not installed: metrics are not logged (pip install tensorboard)",
                          stacklevel=2)
            report_to = "none"
        self.mixed_precision, self.precision_source = _run_precision(config.mixed_precision)
        self.accelerator = Accelerator(
            mixed_precision=self.mixed_precision,
            log_with=None if report_to == "none" else report_to,
            project_config=ProjectConfiguration(project_dir=str(output), logging_dir=str(output / "logs")),
            # middle-block-only leaves the down-block zero convolutions without gradients
            kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=config.middle_block_only)],
        )
        if config.allow_tf32 and torch.cuda.is_available():
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        set_seed(config.seed)
        self.weight_dtype = _DTYPES[self.mixed_precision]
        return report_to

    def _setup_models(self):
        """The frozen base on the device, the phases' recipes, the text and latent encoders; returns the ControlNet
        to train (its polarity resolved into the config)."""
        config = self.config
        if config.demo:
            from .demo import prepare_demo

            with self.accelerator.main_process_first():  # one process writes the tiny base and pictures
                prepare_demo(config)
        self.base = base = load_base(config.base_model, config.base_config, config.allow_non_sd15, config.vae)
        if config.prediction_type:
            base.noise_scheduler.register_to_config(prediction_type=config.prediction_type)
        self.recipes = recipe.phase_recipes(base.noise_scheduler, config)
        self.colour_phase_step = recipe.colour_phase_step(config.colour_phase_start, config.max_train_steps)
        controlnet, polarity, self.polarity_source = build_trained_controlnet(base.unet, config)
        self.config = dataclasses.replace(config, polarity=polarity)  # resolved for hints and the export
        device = self.accelerator.device
        self.vae_dtype = vae_dtype(config.vae_dtype, self.weight_dtype, base.family, bool(config.vae))
        for module in base.frozen_modules:
            module.to(device, dtype=self.vae_dtype if module is base.vae else self.weight_dtype)
        self.embed = TextEmbedder(base.text_encoders, device, self.weight_dtype,
                                  config.text_cache_size if config.cache_text_embeddings else 0)
        self.latents = LatentEncoder(base.vae, device, self.weight_dtype,
                                     config.latent_cache_size if config.use_latent_cache else 0)
        self.generator = torch.Generator(device=device).manual_seed(
            config.seed * 1009 + self.accelerator.process_index)
        return controlnet

    def _setup_data(self):
        """The data source, the sample spec, the training / validation split and the validation triples."""
        self.source = build_source(self.config)
        self.spec = sample_spec(self.config)
        self.buckets, self.bucket_of = None, None
        if self.config.aspect_buckets:
            self.buckets = bucket_sizes(self.config.resolution)
            self.bucket_of = assign_buckets(folder_image_sizes(self.source), self.buckets)
            self.spec = dataclasses.replace(self.spec, sizes=self.buckets[self.bucket_of])
        self.train_indices, validation_indices = self._split(len(self.source))
        self.validation = self._validation_samples(validation_indices)

    def _setup_optimiser(self, controlnet):
        """AdamW (8-bit on request) over ``controlnet``'s recipe parameter groups, the LR schedule, the EMA copy;
        the ControlNet, optimiser and schedule prepared by accelerate."""
        from diffusers.optimization import get_scheduler

        config = self.config
        controlnet.train()
        if config.gradient_checkpointing:
            controlnet.enable_gradient_checkpointing()
        params = trained_parameters(controlnet)
        optimizer = self._optimizer(recipe.param_groups(controlnet, config.learning_rate, config.new_parts_lr_scale))
        lr_scheduler = get_scheduler(config.lr_scheduler, optimizer, num_warmup_steps=config.lr_warmup_steps,
                                     num_training_steps=config.max_train_steps)
        self.controlnet, self.optimizer, self.lr_scheduler = self.accelerator.prepare(controlnet, optimizer,
                                                                                      lr_scheduler)
        self.ema = None
        if config.use_ema:
            from diffusers.training_utils import EMAModel

            self.ema = EMAModel(params, decay=config.ema_decay)
            self.ema.to(self.accelerator.device)
            self.accelerator.register_for_checkpointing(self.ema)

    def _split(self, count: int):
        """(training indices, held-out validation indices): the last N records, when enough remain."""
        config = self.config
        if config.validation_dir or count < 2 * config.num_validation_samples:
            return np.arange(count), np.arange(min(count, config.num_validation_samples))
        held = config.num_validation_samples
        return np.arange(count - held), np.arange(count - held, count)

    def _validation_samples(self, indices) -> list:
        """The validation triples: the user's folder, else the held-out records, unreadable ones skipped and said
        (as training skips them; a run whose data cannot be read at all stops in training with the reasons)."""
        config = self.config
        if config.validation_dir:
            return user_samples(config.validation_dir, config.resolution, recommended_canny(config.edge_params()))
        samples, skipped = held_out_samples(self.source, indices, self.spec)
        if skipped:
            left = (f"{len(samples)} left" if samples else
                    "none left, so this run validates nothing: fix or remove them, or give --validation_dir a folder "
                    "of drawings")
            logger.warning("validation: %d of %d held-out images skipped (%s); %s", sum(skipped.values()),
                           len(indices), ", ".join(f"{reason}: {count}" for reason, count in sorted(skipped.items())),
                           left)
        return samples

    def _optimizer(self, groups):
        config = self.config
        kwargs = dict(lr=config.learning_rate, **recipe.adam_settings(config))
        if config.use_8bit_adam:
            try:
                import bitsandbytes as bnb
            except ImportError:
                raise TrainingError("--use_8bit_adam needs bitsandbytes: "
                                    "pip install bitsandbytes (CUDA only)") from None
            return bnb.optim.AdamW8bit(groups, **kwargs)
        return torch.optim.AdamW(groups, **kwargs)

    def _loader(self):
        config, accelerator = self.config, self.accelerator
        where = (self.micro_batches, accelerator.process_index, accelerator.num_processes)
        if self.bucket_of is None:
            self.sampler = EpochBatchSampler(self.train_indices, config.train_batch_size, config.seed, *where)
        else:
            self.sampler = BucketBatchSampler(self.train_indices, self.bucket_of, config.train_batch_size, config.seed,
                                              *where)
        return torch.utils.data.DataLoader(
            TrainDataset(self.source, self.spec), batch_sampler=self.sampler, collate_fn=collate,
            num_workers=config.num_workers, pin_memory=torch.cuda.is_available(),
            persistent_workers=config.num_workers > 0, prefetch_factor=4 if config.num_workers > 0 else None,
        )

    # ------------------------------------------------------------------ state
    def trainer_state(self) -> dict:
        return {"step": self.step, "micro_batches": self.micro_batches, "nan_streak": self.nan_streak,
                "skipped": dict(self.skipped), "missing_captions": self.missing_captions,
                "generator": self.generator.get_state(), "options": phases.shaping_options(self.config.to_dict()),
                "phases": list(self.phases), "colour_phase_step": self.colour_phase_step}

    def load_trainer_state(self, state: dict):
        self.step, self.micro_batches, self.nan_streak = state["step"], state["micro_batches"], state["nan_streak"]
        self.skipped, self.missing_captions = dict(state["skipped"]), state["missing_captions"]
        self.generator.set_state(state["generator"])
        self.phases = list(state.get("phases", []))
        self.colour_phase_step = state.get("colour_phase_step", self.colour_phase_step)

    # ------------------------------------------------------------------ one step
    def hint(self, batch) -> torch.Tensor:
        """Bx5xHxW hint on the device (white edges on black): made by the workers, or its Canny channel made here."""
        device = self.accelerator.device
        if "hint" in batch:
            return batch["hint"].to(device, non_blocking=True)
        pixels = (batch["pixels"].to(device) + 1.0) / 2.0
        edges = training_edges_batch(pixels, batch["edge_aug"].tolist())
        return make_hint_batch(edges, batch["strokes"].to(device))

    def loss(self, batch) -> torch.Tensor:
        """The denoising loss of one micro-batch (fp32 scalar), with the recipe's timesteps and weights."""
        base, config, device, dtype = self.base, self.config, self.accelerator.device, self.weight_dtype
        scheduler = base.noise_scheduler
        moments = self.latents.moments(batch["pixels"], batch["index"])
        latents = self.latents.sample(moments, self.generator)
        noise = torch.randn(latents.shape, generator=self.generator, device=device, dtype=torch.float32)
        colour = self.colour_phase_step is not None and self.step >= self.colour_phase_step
        phase = self.recipes["colour" if colour else "edge"]
        timesteps = phase.timesteps(latents.shape[0], self.generator, device)
        noisy = scheduler.add_noise(latents.float(), noise, timesteps).to(dtype)
        text = self.embed(batch["caption"]).unet_kwargs(batch["size_ids"].to(device, dtype))
        hint = self.hint(batch)
        with self.accelerator.autocast():
            # the mode comes from the config, not the model: under several GPUs self.controlnet is
            # accelerate's DDP wrapper, which must be the one called (gradient sync) and lacks the model's flag
            down, mid = controlnet_residuals(self.controlnet, noisy, timesteps,
                                             hint=to_model_polarity(hint, config.polarity),
                                             middle_only=config.middle_block_only, **text)
            prediction = base.unet(noisy, timesteps, **text,
                                   down_block_additional_residuals=[d.to(dtype) for d in down],
                                   mid_block_additional_residual=mid.to(dtype)).sample
        target = recipe.denoising_target(scheduler, latents.float(), noise, timesteps)
        sample_weights = phase.weights(timesteps)
        pixel_weights = (recipe.stroke_pixel_weights(hint, latents.shape[-2:], config.stroke_loss_weight)
                         if config.stroke_loss_weight else None)
        loss = recipe.weighted_mse(prediction, target, sample_weights, pixel_weights)
        if config.area_colour_loss_weight:
            loss = loss + config.area_colour_loss_weight * recipe.area_colour_error(
                prediction, target, batch["areas"].to(device), sample_weights)
        return loss

    def _train_step(self, batches) -> float:
        """Accumulate over the micro-batches of one optimiser step; returns the mean loss (NaN if skipped)."""
        accelerator, config = self.accelerator, self.config
        losses = []
        for i, batch in enumerate(batches):
            last = i == len(batches) - 1
            sync = contextlib.nullcontext() if last else accelerator.no_sync(self.controlnet)
            with sync:
                loss = self.loss(batch)
                accelerator.backward(loss / len(batches))
            losses.append(loss.detach())
        mean_loss = torch.stack(losses).mean()
        if accelerator.num_processes > 1:  # every process sees the same loss: the same skips, the same verdicts
            mean_loss = accelerator.reduce(mean_loss, "mean")  # NaN on one process makes the mean NaN
        if not mean_loss.isfinite().item():
            self.optimizer.zero_grad(set_to_none=True)
            self.nan_streak += 1
            warnings.warn(f"step {self.step + 1}: loss is NaN/inf, step skipped ({self.nan_streak} in a row)",
                          stacklevel=2)
            if self.nan_streak >= config.max_nan_steps:
                raise TrainingError(
                    f"{self.nan_streak} optimiser steps in a row had a NaN/inf loss; stopping. Try a lower "
                    "--learning_rate, --mixed_precision bf16 instead of fp16, or resume from an earlier checkpoint"
                )
            return float("nan")
        self.nan_streak = 0
        if config.max_grad_norm > 0:
            accelerator.clip_grad_norm_(self.controlnet.parameters(), config.max_grad_norm)
        self.optimizer.step()
        self.lr_scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        if self.ema is not None:
            self.ema.step(trained_parameters(self.controlnet))
        return float(mean_loss)

    def _next_batches(self, data):
        """The usable micro-batches of the next optimiser step (empty ones are counted and skipped)."""
        batches, empty = [], 0
        while len(batches) < self.config.gradient_accumulation_steps:
            batch = next(data)
            self.micro_batches += 1
            for reason, count in batch["skipped"].items():
                self.skipped[reason] = self.skipped.get(reason, 0) + count
            self.missing_captions += batch["missing_captions"]
            if batch["size"]:
                batches.append(batch)
                empty = 0
            else:
                empty += 1
                if empty >= _MAX_EMPTY_BATCHES:
                    raise TrainingError(f"{empty} batches in a row had no usable image "
                                        f"(skipped so far: {self.skipped}); check the data")
        return batches

    # ------------------------------------------------------------------ outputs
    def metadata(self) -> dict:
        """What the exported file records beside the contract (``model.save_checkpoint`` adds that).

        canny_training: the edge augmentation of training (``preprocessors.EdgeParams`` as JSON);
        recipe: the options of the training recipe (``RECIPE_OPTIONS``, and the step the colour phase began at)
        and strokes: the stroke generator
        (``preprocessors.StrokeParams``) of the last phase; phases: the ``--new_phase`` resumes that changed them.
        """
        config = self.config
        return {"edge_polarity": config.polarity, "training_step": self.step,
                "canny_training": config.edge_params().to_dict(), "base_model": Path(config.base_model).name,
                "resolution": config.resolution, "ema": config.use_ema, "trainer": "training/train.py",
                "recipe": {**{name: getattr(config, name) for name in RECIPE_OPTIONS},
                           "colour_phase_step": self.colour_phase_step},
                "strokes": config.stroke_params().to_dict(), "phases": list(self.phases),
                "fill": {"probability": config.fill_probability, "alpha": DEFAULT_FILL_ALPHA,
                         "gap": config.fill_gap or default_gap(config.resolution, config.resolution)},
                "buckets": None if self.buckets is None else self.buckets.tolist()}

    def export(self, folder) -> Path:
        """Write the (EMA) ControlNet into ``folder`` as the single .safetensors files ``config.export_files`` names
        (a full ControlNet, a control-LoRA or both); returns the first."""
        model, metadata = self.accelerator.unwrap_model(self.controlnet), self.metadata()
        with self._ema_weights():
            written = [save_checkpoint(model, Path(folder) / name, layout=layout, dtype=self.config.export_dtype,
                                       metadata=metadata) for layout, name in self.config.export_files().items()]
        return written[0]

    @contextlib.contextmanager
    def _ema_weights(self):
        if self.ema is None:
            yield
            return
        params = trained_parameters(self.accelerator.unwrap_model(self.controlnet))
        self.ema.store(params)
        self.ema.copy_to(params)
        try:
            yield
        finally:
            self.ema.restore(params)

    def save_checkpoint(self) -> Path | None:
        return checkpointing.save(self.accelerator, self.config.output_dir, self.step, self.trainer_state(),
                                  self.config.checkpoints_total_limit, self.export)

    def _checkpoint(self, result: TrainResult) -> None:
        """Save a checkpoint; on success remember it (a refused write leaves the previous one in place)."""
        folder = self.save_checkpoint()
        if folder is not None:
            result.checkpoint, self.last_saved = folder, self.step

    def validate(self) -> dict | None:
        if not self.accelerator.is_main_process or not self.validation:
            return None
        model = self.accelerator.unwrap_model(self.controlnet)
        model.eval()
        try:
            with self._ema_weights():
                result = run_validation(model, self.base, self.validation, self.config, self.step,
                                        self.accelerator.device, self.accelerator.autocast)
        finally:
            model.train()
        scalars = {"validation/stroke_colour_error": result["stroke_colour_error"],
                   "validation/edge_f1": result["edge_f1"]}
        for tenth, value in enumerate(result.get("stroke_use", [])):  # strokes' loss gain per tenth of timesteps
            scalars[f"stroke_use/t{tenth * 100:03d}-{tenth * 100 + 99:03d}"] = value
        self.accelerator.log(scalars, step=self.step)
        for tracker in self.accelerator.trackers:
            if tracker.name == "tensorboard":
                tracker.writer.add_image("validation", result["grid"], self.step, dataformats="HWC")
        return {"step": self.step, **{k: v for k, v in result.items() if k != "grid"}}

    # ------------------------------------------------------------------ summary
    def parameter_counts(self) -> tuple[int, int]:
        """(trained, frozen) parameters of the run: the ControlNet's trained tensors; the frozen base and a
        control-LoRA's frozen base weights."""
        model = self.accelerator.unwrap_model(self.controlnet)
        trained = sum(p.numel() for p in trained_parameters(model))
        frozen = sum(p.numel() for m in [*self.base.frozen_modules, model] for p in m.parameters()
                     if not p.requires_grad)
        return trained, frozen

    def state_bytes(self) -> int:
        """An estimate of the memory of weights, gradients and optimiser state (activations not included): fp32
        trained weights and gradients, AdamW's two states (8-bit: 2 bytes), the EMA copy, the frozen weights in the
        run's weight dtype."""
        trained, frozen = self.parameter_counts()
        optimiser_bytes = 2 if self.config.use_8bit_adam else 8
        return (trained * (4 + 4 + optimiser_bytes + (4 if self.config.use_ema else 0))
                + frozen * (torch.finfo(self.weight_dtype).bits // 8))

    def summary(self) -> str:
        config, accelerator = self.config, self.accelerator
        model = accelerator.unwrap_model(self.controlnet)
        trained, frozen = self.parameter_counts()
        estimate = self.state_bytes()
        effective = config.train_batch_size * config.gradient_accumulation_steps * accelerator.num_processes
        lines = [
            f"data: {len(self.source)} records from {config.data_source} {config.data!r}; "
            f"{len(self.train_indices)} for training, {len(self.validation)} validation triples; "
            f"{config.resolution}px{self._bucket_summary()}, {config.crop} crop"
            f"{', random flip' if config.random_flip else ''}, "
            f"caption dropout {config.caption_dropout}",
            f"base: {config.base_model}, {family_name(self.base.family)} ({frozen / 1e6:.1f}M frozen parameters in "
            f"{self.weight_dtype}, the VAE in {self.vae_dtype}); "
            f"ControlNet: {trained / 1e6:.1f}M trained parameters"
            f"{' (middle block only)' if config.middle_block_only else ''}"
            f"{self._lora_summary(model)}; exports {', '.join(config.export_files().values())}",
            f"memory estimate: {estimate / 2**30:.2f} GiB for weights, gradients and optimiser state (activations not "
            f"included; --gradient_checkpointing lowers those)",
            f"batch: {config.train_batch_size} x {config.gradient_accumulation_steps} accumulation x "
            f"{accelerator.num_processes} process(es) = effective {effective}; {config.max_train_steps} steps "
            f"from step {self.step}; device {accelerator.device}, "
            f"precision {self.mixed_precision} ({self.precision_source})",
            f"edge polarity: {config.polarity} ({self.polarity_source})",
            "recipe: " + ", ".join(f"{name} {getattr(config, name)}" for name in RECIPE_OPTIONS  # the others: below
                                   if name not in ("learning_rate", "caption_dropout")
                                   and not name.startswith("colour"))
            + f"; strokes coloured by {config.stroke_params().colour}, {config.stroke_params().empty_prob:g} without"
            + (f"; phases {self.phases}" if self.phases else ""),
            (f"colour phase: from step {self.colour_phase_step}, timesteps {config.colour_timestep_sampling}, "
             f"x0 weight floor {config.colour_x0_weight_floor:g}" if self.colour_phase_step is not None
             else "colour phase: none (--colour_phase_start 1)"),
            f"caches: latents {'on' if config.use_latent_cache else 'off'}, caption embeddings "
            f"{'on' if config.cache_text_embeddings else 'off'}; "
            f"hints on {'the accelerator' if config.hint_on_gpu else 'the data workers'}",
        ]
        return "\n".join(lines)

    def _lora_summary(self, model) -> str:
        """What --lora_rank made of the ControlNet ('' without it)."""
        if not self.config.lora_rank:
            return ""
        return (f", a control-LoRA: rank {self.config.lora_rank} differences on {len(low_rank_deltas(model))} "
                "layers copied from the UNet (frozen), biases, norms and the new parts in full")

    def _bucket_summary(self) -> str:
        """How the training images fall into aspect-ratio buckets ('' without them)."""
        if self.buckets is None:
            return ""
        counts = np.bincount(self.bucket_of[self.train_indices], minlength=len(self.buckets))
        used = ", ".join(f"{h}x{w}: {n}" for (h, w), n in zip(self.buckets.tolist(), counts, strict=True) if n)
        return f" in aspect-ratio buckets (height x width: images; {used})"

    # ------------------------------------------------------------------ run
    def _on_signal(self, signum, frame):
        self.stop_signal = signum
        signal.signal(signum, signal.SIG_DFL)  # a second signal ends the process at once

    def run(self) -> TrainResult:
        self._setup()
        accelerator = self.accelerator
        if accelerator.is_main_process:
            print(self.summary(), flush=True)
        handlers = {}
        if threading.current_thread() is threading.main_thread():
            handlers = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        result = TrainResult(self.step, None, None, family=self.base.family)
        try:
            self._loop(result)
        except _Stop:
            print(f"stopped by signal {self.stop_signal} at step {self.step}; checkpoint {result.checkpoint}; "
                  f"continue with --resume_from_checkpoint latest", flush=True)
            raise SystemExit(128 + self.stop_signal) from None
        finally:
            for signum, handler in handlers.items():
                signal.signal(signum, handler)
            accelerator.end_training()
        return result

    def _loop(self, result: TrainResult):
        config, accelerator = self.config, self.accelerator
        self.last_saved = self.step if config.resume_from_checkpoint else None
        progress = _progress(config.max_train_steps, self.step, not accelerator.is_main_process)
        with contextlib.closing(progress):
            self._steps(iter(self._loader()), progress, result)
        if self.last_saved != self.step:
            self._checkpoint(result)
        if not result.validation or result.validation[-1] is None or result.validation[-1]["step"] != self.step:
            result.validation.append(self.validate())
        result.validation = [v for v in result.validation if v is not None]
        result.step, result.skipped, result.missing_captions = self.step, dict(self.skipped), self.missing_captions
        if accelerator.is_main_process:
            result.export_path = self.export(config.output_dir)
        accelerator.wait_for_everyone()

    def _steps(self, data, progress, result: TrainResult):
        """Optimiser steps until max_train_steps, with the periodic checkpoints and validations."""
        config, accelerator = self.config, self.accelerator
        started, samples_done = time.perf_counter(), 0
        guard = DivergenceGuard(config.divergence_factor)
        while self.step < config.max_train_steps:
            if self.step == self.colour_phase_step:
                guard.reset()  # the colour phase's loss weighs other timesteps: a level of its own
            batches = self._next_batches(data)
            loss = self._train_step(batches)
            self.step += 1
            if guard.observe(loss):
                raise TrainingError(self._divergence_message(guard))
            samples_done += sum(b["size"] for b in batches) * accelerator.num_processes
            result.losses.append(loss)
            speed = samples_done / max(time.perf_counter() - started, 1e-9)
            accelerator.log({"train/loss": loss, "train/lr": self.lr_scheduler.get_last_lr()[0],
                             "train/samples_per_second": speed}, step=self.step)
            progress.update(1)
            progress.set_postfix(loss=f"{loss:.4f}", samples_s=f"{speed:.2f}")
            if self.on_step is not None:
                self.on_step(self, self.step)
            if config.checkpointing_steps and self.step % config.checkpointing_steps == 0:
                self._checkpoint(result)
            if config.validation_steps and self.step % config.validation_steps == 0:
                result.validation.append(self.validate())
            if self.stop_signal is not None:
                if self.last_saved != self.step:
                    self._checkpoint(result)
                raise _Stop()

    def _divergence_message(self, guard: DivergenceGuard) -> str:
        """What a diverged run tells its user: where, and the checkpoint from before it to resume from."""
        config = self.config
        began = self.step - guard.recent + 1
        good = checkpointing.newest_before(config.output_dir, began)
        head = (f"the loss diverged: its median over steps {began}-{self.step} is {guard.ratio:.0f}x that of the "
                f"steps before (--divergence_factor {config.divergence_factor:g}); stopped without saving the "
                "diverged model. ")
        if good is None:
            return head + ("No checkpoint precedes it: start again with a lower --learning_rate or --adam_beta2 "
                           "(docs/training-recipe.md)")
        return head + (f"The last checkpoint before it is {good} (its exported model: "
                       f"{good / next(iter(config.export_files().values()))}). Resume from it with "
                       f"--resume_from_checkpoint {good} --new_phase and a lower --learning_rate or --adam_beta2 "
                       "(docs/training-recipe.md)")


def _progress(total: int, initial: int, disable: bool):
    """The tqdm bar of the run (loss, samples/s, ETA); tqdm comes with diffusers (through huggingface_hub)."""
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, disable=disable, desc="training", unit="step", dynamic_ncols=True)


def _importable(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def _flat_config(config: TrainConfig) -> dict:
    """Tracker-friendly config: scalars as they are, everything else as text."""
    return {k: v if isinstance(v, (int, float, str, bool)) else str(v) for k, v in config.to_dict().items()}

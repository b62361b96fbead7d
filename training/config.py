"""The trainer's options: one dataclass, read from a YAML file and overridden by command-line flags.

Precedence: built-in defaults < ``--config FILE.yaml`` < flags. Every field is a flag of the same name
(``--learning_rate 1e-5``; booleans also take ``--no-NAME``). YAML values are converted to the option's
type as flag text is (``learning_rate: 1e-5``, which PyYAML reads as text, is a number; see ``coerce``).
The stroke generator and Canny augmentation parameters live in the ``strokes:`` and ``edges:`` sections
of the YAML file and in the ``--strokes.FIELD`` / ``--edges.FIELD`` flags; they map one to one onto
``preprocessors.StrokeParams`` and ``preprocessors.EdgeParams``.
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import os
from dataclasses import dataclass, field, fields
from pathlib import Path

from preprocessors import EDGE_POLARITIES, MAX_FILL_GAP, EdgeParams, HintError, StrokeParams

from .recipe import TIMESTEP_SAMPLINGS


class ConfigError(ValueError):
    """An option that cannot work; the message names it and says what to do."""


# How a resume may change an option (``phase=`` of ``_opt``; ``training.phases`` applies the rules).
FREE = "free"  # on any resume: it does not change what is learned (paths, lengths, logging, caches)
FIXED = "fixed"  # never within a run: it defines the model, its hint or the data position
NEW_PHASE = "new_phase"  # only by a --new_phase resume, which records the change (the default)


def _number(value) -> str:
    return str(int(value)) if float(value).is_integer() and abs(value) < 2**53 else f"{value:g}"


@dataclass(frozen=True)
class Bounds:
    """The numbers a numeric option accepts: from ``low`` (excluded when ``low_open``) to ``high`` (excluded
    when ``high_open``), None meaning unbounded; a multiple of ``multiple_of`` when given; never NaN or
    infinite. ``zero_is_off``: 0 means "off" and is accepted whatever the range."""

    low: float | None = None
    low_open: bool = False
    high: float | None = None
    high_open: bool = False
    multiple_of: int | None = None
    zero_is_off: bool = False

    def accepts(self, value) -> bool:
        if self.zero_is_off and value == 0:
            return True
        if not math.isfinite(value):
            return False
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        if self.high is not None and (value >= self.high if self.high_open else value > self.high):
            return False
        return not self.multiple_of or value % self.multiple_of == 0

    def describe(self) -> str:
        """What an accepted value is, to follow "must": "lie in [0, 1]", "be positive", "not be negative
        (0 = off)", "be above 1 (or 0 = off)", "be a positive multiple of 8"."""
        low, high = self.low, self.high
        if low is not None and high is not None:
            text = (f"lie in {'(' if self.low_open else '['}{_number(low)}, {_number(high)}"
                    f"{')' if self.high_open else ']'}")
        elif low is not None:
            if low == 0:
                text = "be positive" if self.low_open else "not be negative"
            else:
                text = f"be {'above' if self.low_open else 'at least'} {_number(low)}"
        elif high is not None:
            text = f"be {'below' if self.high_open else 'at most'} {_number(high)}"
        else:
            text = "be a finite number"
        if self.multiple_of:
            text = (f"be a positive multiple of {self.multiple_of}" if text == "be positive"
                    else f"{text} and a multiple of {self.multiple_of}")
        if self.zero_is_off:
            text += " (0 = off)" if Bounds(low, self.low_open, high, self.high_open).accepts(0) else " (or 0 = off)"
        return text


def _opt(default, help: str, choices=None, group: str = "training", phase: str = NEW_PHASE, recipe: bool = False, *,
         at_least=None, above=None, at_most=None, below=None, multiple_of=None, zero_is_off=False, flag_const=None):
    """A dataclass field carrying every fact of one option, from which the parser, the checks of
    ``TrainConfig.validate``, the resume rules of ``training.phases`` and the recorded recipe derive.

    default: the default (``dict``: an empty dict, a section); help: its --help text; choices: the allowed
    values; group: its --help group; phase: how a resume may change it (FREE, FIXED or NEW_PHASE);
    recipe: whether the exported file records it in its ``recipe`` metadata (``RECIPE_OPTIONS``); the
    numeric bounds (``Bounds``): at_least/above (inclusive/exclusive lowest), at_most/below (inclusive/
    exclusive highest), multiple_of, and zero_is_off (0 = off, accepted besides the range); flag_const: the value
    of the flag given without one (``--demo`` is ``--demo sd15``).
    """
    if phase not in (FREE, FIXED, NEW_PHASE):
        raise ValueError(f"phase must be FREE, FIXED or NEW_PHASE, got {phase!r}")
    if (at_least is not None and above is not None) or (at_most is not None and below is not None):
        raise ValueError("give at most one of at_least/above and one of at_most/below")
    low, high = (above if at_least is None else at_least), (below if at_most is None else at_most)
    bounded = low is not None or high is not None or multiple_of or zero_is_off
    bounds = Bounds(low, above is not None, high, below is not None, multiple_of, zero_is_off) if bounded else None
    metadata = {"help": help, "choices": choices, "group": group, "phase": phase, "recipe": recipe, "bounds": bounds,
                "flag_const": flag_const}
    if default is dict:
        return field(default_factory=dict, metadata=metadata)
    return field(default=default, metadata=metadata)


DATA_SOURCES = ("folder", "hf", "webdataset", "urls")


@dataclass
class TrainConfig:
    """Everything a training run reads. Units: steps are optimiser steps; sizes are pixels."""

    # --- model
    base_model: str | None = _opt(None, "the base, SD 1.5 or SDXL-architecture (SDXL, Illustrious, NoobAI, Pony; the "
                                  "family is detected): a diffusers folder, or a single .safetensors/.ckpt file as "
                                  "ComfyUI/A1111 keep them", group="model", phase=FIXED)
    base_config: str | None = _opt(None, "for a single-file base: a local diffusers folder of its family whose configs "
                                   "describe it (needed offline; weights are not read from it)", group="model",
                                   phase=FIXED)
    allow_non_sd15: bool = _opt(False, "accept a base whose shapes are not a full-size SD 1.5 or SDXL (tests, "
                                "experiments)", group="model")
    vae: str | None = _opt(None, "a diffusers VAE folder to use instead of the base's (SDXL: an fp16-safe VAE such as "
                           "madebyollin/sdxl-vae-fp16-fix, which may run in fp16)", group="model", phase=FIXED)
    vae_dtype: str = _opt("auto", "the VAE's precision: auto (fp32 for an SDXL base's own VAE under fp16, which "
                          "overflows there; else the run's), fp32, or precision (the run's)",
                          choices=("auto", "fp32", "precision"), group="model")
    controlnet_init: str | None = _opt(None, "start from this ControlNet file or folder instead of copying the UNet: "
                                       "one of ours, or a 3-channel (e.g. Canny) ControlNet, which is widened to 5 "
                                       "channels", group="model", phase=FIXED)
    middle_block_only: bool = _opt(False, "train a ControlNet that feeds only the UNet's middle block (less memory, "
                                   "weaker control)", group="model", phase=FIXED)
    lora_rank: int = _opt(0, "train a control-LoRA of this rank: the copied encoder keeps the base's weights and each "
                          "of its linear and convolution layers learns a rank-R difference; biases, norms and the new "
                          "parts train in full (0: the full ControlNet). The export is then a control-LoRA, which "
                          "ComfyUI, A1111 and Forge rebuild on the checkpoint they sample (see --lora_export). LoRA "
                          "layers usually want a higher --learning_rate than full training",
                          group="model", phase=FIXED, at_least=0)
    polarity: str | None = _opt(None, "edge channel polarity of the hint, recorded in the checkpoint (default: the one "
                                "--controlnet_init records, else white_on_black)",
                                choices=(None, *EDGE_POLARITIES), group="model", phase=FIXED)
    prediction_type: str | None = _opt(None, "override the base scheduler's prediction type (default: its own)",
                                       choices=(None, "epsilon", "v_prediction"), group="model", phase=FIXED)

    # --- data
    data_source: str = _opt("folder", "kind of data: folder (images + sidecar .txt or metadata.jsonl/.csv), hf "
                            "(Hugging Face dataset: saved folder or name), webdataset (tar shards; brace patterns "
                            "like data-{000..009}.tar), urls (caption + image-URL table: .tsv/.csv/.parquet)",
                            choices=DATA_SOURCES, group="data")
    data: str | None = _opt(None, "where the data is: folder, dataset path/name, shard pattern or table file",
                            group="data")
    image_column: str = _opt("image", "image column/key (metadata file name column, HF image feature, webdataset "
                             "extension list like jpg;png)", group="data")
    caption_column: str = _opt("text", "caption column/key (webdataset: the caption extension, e.g. txt)", group="data")
    url_column: str = _opt("url", "URL column of a urls table (a 2-column TSV without header is read as "
                           "caption<TAB>url, as Conceptual Captions ships it)", group="data")
    hf_split: str = _opt("train", "split of a Hugging Face dataset", group="data")
    url_cache_dir: str | None = _opt(None, "on-disk cache of downloaded images (default OUTPUT_DIR/url_cache)",
                                     group="data", phase=FREE)
    url_connect_timeout: float = _opt(5.0, "seconds to wait for a connection to an image server", group="data",
                                      phase=FREE, above=0)
    url_read_timeout: float = _opt(10.0, "seconds to wait for data from an image server", group="data",
                                   phase=FREE, above=0)
    url_retries: int = _opt(2, "retries of a failed download (connection errors and 5xx, with backoff)", group="data",
                            phase=FREE, at_least=0)
    url_max_bytes: int = _opt(20_000_000, "largest image download in bytes; larger ones are skipped", group="data",
                              phase=FREE, at_least=1)
    resolution: int = _opt(512, "training size in pixels (square, or the buckets' area with --aspect_buckets; a "
                           "multiple of 8)", group="data", above=0, multiple_of=8)
    aspect_buckets: bool = _opt(False, "train each image in the aspect-ratio bucket nearest its own (about RESOLUTION² "
                                "pixels, sides multiples of 64, up to 2.5:1) instead of cut square, one bucket per "
                                "batch, as SDXL was trained; --data_source folder (sizes read from the headers once)",
                                group="data", phase=FIXED)
    crop: str = _opt("center", "how the image, resized to cover RESOLUTION (or its bucket), is cut to it",
                     choices=("center", "random"), group="data")
    random_flip: bool = _opt(False, "flip images left-right at random", group="data")
    caption_dropout: float = _opt(0.5, "probability of training on the empty prompt instead of the caption",
                                  group="data", recipe=True, at_least=0, at_most=1)
    num_workers: int = _opt(4, "DataLoader worker processes (hints are made there)", group="data",
                            phase=FREE, at_least=0)
    hint_on_gpu: bool = _opt(False, "compute the Canny channel on the accelerator with canny_batch instead of on the "
                             "workers (strokes stay on the workers)", group="data")
    strokes: dict = _opt(dict, "procedural stroke parameters (preprocessors.StrokeParams fields)", group="hint")
    edges: dict = _opt(dict, "Canny augmentation parameters (preprocessors.EdgeParams fields)", group="hint")
    fill_probability: float = _opt(0.5, "probability that a sample's procedural strokes are filled between the lines "
                                   "of its own edges first (flats at alpha 0.5 beside the painted strokes at 1, as "
                                   "every host fills a person's strokes: preprocessors.fill_strokes); the other "
                                   "samples keep sparse strokes. 0 = sparse only, as models before the fill",
                                   group="hint", recipe=True, at_least=0, at_most=1)
    fill_gap: int = _opt(0, "widest gap in a line, in pixels, that the fill does not leak through (0 = in "
                         "proportion to the resolution: 6 at 512)", group="hint", recipe=True, at_least=0,
                         at_most=MAX_FILL_GAP)

    # --- optimisation
    output_dir: str | None = _opt(None, "where checkpoints, logs, validation images and the exported model go",
                                  phase=FREE)
    max_train_steps: int = _opt(10000, "optimiser steps to train for", phase=FREE, at_least=1)
    train_batch_size: int = _opt(4, "samples per device per micro-batch", phase=FIXED, at_least=1)
    gradient_accumulation_steps: int = _opt(16, "micro-batches per optimiser step (effective batch = batch size x "
                                            "this x number of processes; 64 is the paper's recipe)",
                                            phase=FIXED, at_least=1)
    learning_rate: float = _opt(1e-5, "AdamW learning rate", recipe=True, above=0)
    lr_scheduler: str = _opt("constant", "learning-rate schedule (diffusers get_scheduler names)",
                             choices=("constant", "constant_with_warmup", "linear", "cosine"))
    lr_warmup_steps: int = _opt(0, "warm-up steps of the learning-rate schedule", at_least=0)
    adam_beta1: float = _opt(0.9, "AdamW beta1", at_least=0, below=1)
    adam_beta2: float = _opt(0.99, "AdamW beta2 (the diffusers examples' 0.999 let a long toy-world colour "
                             "phase diverge: docs/training-recipe.md)", at_least=0, below=1)
    adam_weight_decay: float = _opt(1e-2, "AdamW weight decay", at_least=0)
    adam_epsilon: float = _opt(1e-8, "AdamW epsilon", above=0)
    use_8bit_adam: bool = _opt(False, "bitsandbytes' 8-bit AdamW (saves optimiser memory; needs bitsandbytes)",
                               phase=FIXED)
    max_grad_norm: float = _opt(1.0, "gradient clipping norm (0 = off)", at_least=0)
    mixed_precision: str | None = _opt(None, "autocast precision; frozen models are stored in it too (default: what "
                                       "accelerate launch / accelerate config chose, else bf16 on a CUDA GPU that "
                                       "supports it, fp16 on other CUDA GPUs, no on CPU/MPS)",
                                       choices=(None, "no", "fp16", "bf16"), phase=FREE)
    gradient_checkpointing: bool = _opt(False, "recompute ControlNet activations in the backward pass (less memory)",
                                        phase=FREE)
    allow_tf32: bool = _opt(True, "allow TF32 matmuls on Ampere+ GPUs", phase=FREE)
    use_ema: bool = _opt(False, "keep an exponential moving average of the ControlNet; exports use it", phase=FIXED)
    ema_decay: float = _opt(0.9999, "EMA decay per optimiser step", at_least=0, below=1)
    seed: int = _opt(0, "seed of everything random: shuffling, hints, noise, timesteps, caption dropout",
                     phase=FIXED, at_least=0)
    cache_latents: str = _opt("auto", "keep VAE latent distributions of training images in memory: auto = when no "
                              "random crop/flip needs fresh ones", choices=("auto", "yes", "no"), phase=FREE)
    latent_cache_size: int = _opt(50000, "most images whose latents are cached", phase=FREE, at_least=0)
    cache_text_embeddings: bool = _opt(True, "keep caption embeddings in memory (the text encoder is frozen)",
                                       phase=FREE)
    text_cache_size: int = _opt(50000, "most captions whose embeddings are cached", phase=FREE, at_least=0)
    max_nan_steps: int = _opt(5, "stop after this many optimiser steps in a row with a NaN/inf loss (each is skipped)",
                              phase=FREE, at_least=1)
    divergence_factor: float = _opt(10.0, "stop a diverged run: when the median loss of the last 20 steps exceeds "
                                    "this multiple of the median of the 500 before, the run stops before it writes "
                                    "another checkpoint and names the last one to resume from (0 = off)",
                                    phase=FREE, above=1, zero_is_off=True)

    # --- recipe: what makes the strokes set the colour (docs/training-recipe.md)
    timestep_sampling: str = _opt("uniform", "how training timesteps are drawn: uniform; cubic, t = (1 - u^3) T "
                                  "(T2I-Adapter), more high-noise steps; high, t ~ U[T/2, T)",
                                  choices=TIMESTEP_SAMPLINGS, group="recipe", recipe=True)
    timestep_uniform_prob: float = _opt(0.0, "probability that a sample's timestep is drawn uniformly instead "
                                        "(a mix with --timestep_sampling)", group="recipe",
                                        recipe=True, at_least=0, at_most=1)
    new_parts_lr_scale: float = _opt(10.0, "learning-rate multiplier of the newly initialised parts (hint encoder, "
                                     "zero convolutions, middle-block out)", group="recipe", recipe=True, above=0)
    min_snr_gamma: float = _opt(0.0, "Min-SNR-gamma loss weighting (e.g. 5; 0 = off): low-noise steps count less",
                                group="recipe", recipe=True, at_least=0)
    x0_weight_floor: float = _opt(0.0, "least weight of an x0 (colour) error at any timestep: loss weight "
                                  "max(SNR, this) / SNR, which lifts the high-noise steps where only the strokes "
                                  "tell the colour (e.g. 1; 0 = off)", group="recipe", recipe=True, at_least=0)
    stroke_loss_weight: float = _opt(0.0, "extra loss weight on latent pixels under strokes: weight 1 + this "
                                     "there (0 = off)", group="recipe", recipe=True, at_least=0)
    area_colour_loss_weight: float = _opt(0.0, "weight of the area colour loss, added to the denoising loss: the "
                                          "squared error of each stroked area's mean in the single-step x0 "
                                          "prediction, every area weighted alike whatever its size, so small areas "
                                          "take their colour too (e.g. 1; 0 = off; docs/training-recipe.md)",
                                          group="recipe", recipe=True, at_least=0)
    stroke_density_start: float = _opt(1.0, "stroke count multiplier at step 0, falling linearly to 1 over "
                                       "--stroke_density_steps (dense-to-sparse strokes; 1 = off)", group="recipe",
                                       recipe=True, above=0)
    stroke_density_steps: int = _opt(0, "optimiser steps over which the stroke count falls from "
                                     "--stroke_density_start to 1", group="recipe", recipe=True, at_least=0)
    colour_phase_start: float = _opt(0.12, "fraction of --max_train_steps after which the colour phase begins: "
                                     "timesteps and weights switch to --colour_timestep_sampling and "
                                     "--colour_x0_weight_floor (the step is fixed when the run starts and kept on "
                                     "resume; 1 = no colour phase)", group="recipe", recipe=True, at_least=0, at_most=1)
    colour_timestep_sampling: str = _opt("high", "timestep sampling of the colour phase", choices=TIMESTEP_SAMPLINGS,
                                         group="recipe", recipe=True)
    colour_x0_weight_floor: float = _opt(1.0, "x0 weight floor of the colour phase (see --x0_weight_floor)",
                                         group="recipe", recipe=True, at_least=0)
    new_phase: bool = _opt(False, "with --resume_from_checkpoint: continue the weights, optimiser moments and step "
                           "count under changed recipe options (a colour phase after an edge phase); without it a "
                           "resume refuses changed options", group="recipe", phase=FREE)

    # --- checkpoints, export, validation, logging
    checkpointing_steps: int = _opt(500, "save a resumable checkpoint every N optimiser steps (0 = only at the end)",
                                    group="checkpoints", phase=FREE, at_least=0)
    checkpoints_total_limit: int = _opt(3, "keep the last K checkpoints", group="checkpoints", phase=FREE, at_least=1)
    resume_from_checkpoint: str | None = _opt(None, "'latest' or a checkpoint folder to continue from exactly",
                                              group="checkpoints", phase=FREE)
    export_layout: str = _opt("ldm", "layout of the exported single-file ControlNet (ldm: as ComfyUI/A1111 files; "
                              "diffusers: ControlNetModel keys)", choices=("ldm", "diffusers"), group="checkpoints",
                              phase=FREE)
    lora_export: str = _opt("control_lora", "with --lora_rank, what to export: control_lora (NAME_control_lora_rankR"
                            ".safetensors), full (NAME.safetensors, the ControlNet on the training base, in "
                            "--export_layout) or both", choices=("control_lora", "full", "both"), group="checkpoints",
                            phase=FREE)
    export_dtype: str = _opt("fp16", "dtype of the exported weights", choices=("fp16", "bf16", "fp32"),
                             group="checkpoints", phase=FREE)
    export_name: str = _opt("control_colorstroke_sd15", "file name (without .safetensors) of the exported model",
                            group="checkpoints", phase=FREE)
    validation_steps: int = _opt(500, "validate every N optimiser steps (0 = only at the end)", group="validation",
                                 phase=FREE, at_least=0)
    validation_dir: str | None = _opt(None, "your validation triples: NAME.png (line drawing), NAME.strokes.png "
                                      "(transparent stroke layer), NAME.txt (prompt); default: held-out training "
                                      "images with procedural strokes", group="validation", phase=FREE)
    num_validation_samples: int = _opt(4, "held-out images used for validation when no validation_dir is given",
                                       group="validation", phase=FREE, at_least=1)
    validation_inference_steps: int = _opt(20, "denoising steps of a validation image", group="validation",
                                           phase=FREE, at_least=1)
    validation_guidance_scale: float = _opt(7.5, "classifier-free guidance of validation images", group="validation",
                                            phase=FREE, at_least=0)
    report_to: str = _opt("tensorboard", "experiment tracker", choices=("tensorboard", "wandb", "none"),
                          group="logging", phase=FREE)
    demo: str | None = _opt(None, "the built-in tiny run: a random tiny base of this family (--demo alone: sd15), "
                            "skimage pictures, CPU, a few minutes; other options still apply on top",
                            choices=(None, "sd15", "sdxl"), group="logging", phase=FREE, flag_const="sd15")

    def __post_init__(self):
        self.strokes = dict(self.strokes or {})
        self.edges = dict(self.edges or {})

    # ---- derived values
    def stroke_params(self) -> StrokeParams:
        try:
            return StrokeParams.from_dict(self.strokes)
        except (HintError, TypeError) as error:
            raise ConfigError(f"strokes: {error}") from None

    def edge_params(self) -> EdgeParams:
        try:
            return EdgeParams.from_dict(self.edges)
        except (HintError, TypeError) as error:
            raise ConfigError(f"edges: {error}") from None

    @property
    def random_augmentation(self) -> bool:
        """Whether the cropped image differs between epochs (random crop or flip)."""
        return self.crop == "random" or self.random_flip

    def export_files(self) -> dict[str, str]:
        """layout -> file name of each model the run exports (the first is the one it reports): the full ControlNet
        as NAME.safetensors in ``export_layout``, a control-LoRA as NAME_control_lora_rankR.safetensors."""
        control_lora = {"control_lora": f"{self.export_name}_control_lora_rank{self.lora_rank}.safetensors"}
        full = {self.export_layout: f"{self.export_name}.safetensors"}
        if not self.lora_rank or self.lora_export == "full":
            return full
        return control_lora if self.lora_export == "control_lora" else {**control_lora, **full}

    @property
    def use_latent_cache(self) -> bool:
        if self.cache_latents == "yes" and self.random_augmentation:
            raise ConfigError("cache_latents=yes with random crop/flip would train on stale crops; use auto or no")
        return self.cache_latents == "yes" or (self.cache_latents == "auto" and not self.random_augmentation)

    def validate(self) -> "TrainConfig":
        """Convert every option to its field's type (as ``coerce_options``), then raise ConfigError on the
        first option that cannot work; returns self."""
        for name, value in coerce_options(self.to_dict()).items():
            setattr(self, name, value)
        if not self.output_dir:
            raise ConfigError("--output_dir is required: where checkpoints and the exported model go")
        if not self.demo:
            if not self.base_model:
                raise ConfigError("--base_model is required (an SD 1.5 diffusers folder or .safetensors), "
                                  "or use --demo")
            if not self.data:
                raise ConfigError("--data is required (a folder, dataset, shard pattern or URL table), or use --demo")
        for f in fields(self):  # each option's bounds and choices, as its ``_opt`` declares them
            bounds, choices, value = f.metadata["bounds"], f.metadata["choices"], getattr(self, f.name)
            if bounds is not None and value is not None and not bounds.accepts(value):
                raise ConfigError(f"{f.name} must {bounds.describe()}, got {value}")
            if choices and value not in choices:
                raise ConfigError(f"{f.name} must be one of {choices}, got {value!r}")
        if self.new_phase and not self.resume_from_checkpoint:
            raise ConfigError("--new_phase continues a run under new options: give --resume_from_checkpoint too")
        if self.aspect_buckets and self.data_source != "folder":
            raise ConfigError(f"--aspect_buckets needs every image's size before training, which --data_source "
                              f"{self.data_source} cannot tell without fetching them all: use a folder of images, or "
                              "leave --aspect_buckets off")
        if self.lora_rank and self.controlnet_init:
            raise ConfigError("--lora_rank trains differences from the base's own encoder, which the hosts "
                              "rebuild from the checkpoint they sample; --controlnet_init starts from another "
                              "ControlNet. Train without --lora_rank, then make a control-LoRA of the result: "
                              "python -m model.convert OUT/NAME.safetensors LORA.safetensors --layout control_lora "
                              "--base BASE")
        if self.hint_on_gpu and self.fill_probability > 0:
            raise ConfigError("the fill needs each sample's edges on the data workers, but --hint_on_gpu makes them on "
                              "the accelerator: leave --hint_on_gpu off, or set --fill_probability 0")
        if self.hint_on_gpu and self.area_colour_loss_weight > 0:
            raise ConfigError("the area colour loss needs each sample's areas from its edges on the data workers, but "
                              "--hint_on_gpu makes the edges on the accelerator: leave --hint_on_gpu off, or set "
                              "--area_colour_loss_weight 0")
        self.stroke_params()
        self.edge_params()
        self.use_latent_cache  # noqa: B018 - raises on a contradiction
        return self

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def option_names(*, phase: str | None = None, recipe: bool | None = None) -> tuple[str, ...]:
    """The TrainConfig options, in declaration order, whose ``_opt`` facts match: ``phase`` (FREE, FIXED,
    NEW_PHASE) and/or ``recipe`` (recorded in the exported file's metadata)."""
    return tuple(f.name for f in fields(TrainConfig)
                 if (phase is None or f.metadata["phase"] == phase)
                 and (recipe is None or f.metadata["recipe"] == recipe))


# What --demo changes before the YAML file and flags apply: a tiny CPU run of a few dozen steps; the export name
# is ``demo_tiny_colorstroke_not_<family>`` (a toy model: the hosts refuse it, and its name says so).
DEMO_DEFAULTS = {
    "allow_non_sd15": True,
    "resolution": 64,
    "max_train_steps": 60,
    "train_batch_size": 4,
    "gradient_accumulation_steps": 1,
    "learning_rate": 1e-4,
    "num_workers": 0,
    "checkpointing_steps": 30,
    "checkpoints_total_limit": 2,
    "validation_steps": 30,
    "num_validation_samples": 2,
    "validation_inference_steps": 8,
    "export_dtype": "fp32",
    "report_to": "tensorboard",
    "strokes": {"length_min": 20, "length_max": 80, "thickness": (0, 1)},
}

_SUB_PARAMS = {"strokes": StrokeParams, "edges": EdgeParams}
_SUB_HELP = {
    "strokes": {
        "count_min": "fewest strokes per sample", "count_max": "most strokes per sample",
        "count_pow2": "draw the stroke count as a power of two in [count_min, count_max]",
        "length_min": "shortest random walk in steps (pixels)", "length_max": "longest random walk in steps",
        "thickness": "stroke radii in pixels to pick from, e.g. 0,1,2,3",
        "dots_max": "most extra dot strokes per sample", "dot_size_min": "smallest dot side in pixels",
        "dot_size_max": "largest dot side in pixels", "blur_prob": "probability of blurring the stroke layer",
        "blur_sigma_min": "smallest blur sigma in pixels", "blur_sigma_max": "largest blur sigma in pixels",
        "blur_mode": "gaussian, or downscale (area-downscale and upscale)",
        "colour": "pixel (the image's colour under the stroke), mean (the walk's mean), region (the mean colour of "
                  "the area between the edges), lit (that area's colour where the light falls fully: the mean of its "
                  "brightest tenth, the local colour a painter picks for the flats)",
        "empty_prob": "probability of a sample without strokes",
    },
    "edges": {
        "low_min": "smallest Canny low threshold", "low_max": "largest Canny low threshold",
        "ratio_min": "smallest high/low threshold ratio", "ratio_max": "largest high/low threshold ratio",
        "blur_prob": "probability of blurring the image before Canny", "blur_sigma_min": "smallest blur sigma",
        "blur_sigma_max": "largest blur sigma", "downscale_prob": "probability of running Canny on a shrunk image",
        "downscale_min": "smallest shrink factor", "downscale_max": "largest shrink factor",
    },
}


_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")
_EXPECTED = {bool: "true or false (bool)", int: "an integer (int)", float: "a number (float)", str: "text (str)",
             tuple: "a list of integers such as [0, 1] or 0,1 (tuple)", dict: "a mapping of parameter: value"}


def _field_kind(f: dataclasses.Field) -> tuple[type, bool]:
    """(type, whether None is allowed) of an option, as its flag parses it: the default's type; a None
    default is optional text; an empty-dict default (``strokes``/``edges``) is a section."""
    if f.default is None:
        return str, True
    if f.default is dataclasses.MISSING:
        return dict, False
    return type(f.default), False


# The converters of ``coerce``: a YAML value or a flag's text -> one kind; ValueError when it is not one.
def _to_bool(value) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower() if isinstance(value, (str, int)) else None
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(value)


def _to_int(value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(value)
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("+-").isdigit():
        return int(value)
    number = float(value)  # 1e4, 1.0e4 and 10000.0 are integers too; 2.5 is not
    if not number.is_integer():
        raise ValueError(value)
    return int(number)


def _to_float(value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(value)
    return float(value)  # text too: PyYAML reads 1e-5 (no dot) as a string


def _to_str(value) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"  # YAML 1.1 reads yes/no/on/off as booleans (mixed_precision: no)
    if isinstance(value, (str, int, float)):
        return str(value)
    raise ValueError(value)


def _to_tuple(value) -> tuple:
    if isinstance(value, str):
        return tuple(_to_int(part) for part in value.split(",") if part.strip())
    if isinstance(value, (list, tuple)):
        return tuple(_to_int(part) for part in value)
    return (_to_int(value),)


_CONVERTERS = {bool: _to_bool, int: _to_int, float: _to_float, str: _to_str, tuple: _to_tuple}


def coerce(value, kind: type, optional: bool = False):
    """``value`` (a flag's text or a YAML value) as ``kind`` (bool, int, float, str or tuple of ints).

    Text is parsed as the flags parse it (``1e-5`` is a float, ``true``/``no`` are booleans, ``0,1`` is a
    tuple); an integral float is an int; None stays None only when ``optional``. Raises ValueError otherwise.
    """
    if value is None:
        if optional:
            return None
        raise ValueError(value)
    try:
        return _CONVERTERS[kind](value)
    except (TypeError, OverflowError) as error:
        raise ValueError(value) from error


def _coerce_option(name: str, value, kind: type, optional: bool, where: str):
    """``coerce`` with a ConfigError naming the option, its value and the expected type."""
    try:
        return coerce(value, kind, optional)
    except ValueError:
        raise ConfigError(f"{name}{where}: expected {_EXPECTED[kind]}{' or null' if optional else ''}, got "
                          f"{value!r}") from None


def _coerce_section(section: str, values, where: str) -> dict:
    """A ``strokes``/``edges`` mapping with each parameter converted to its field's type."""
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise ConfigError(f"{section}{where}: expected {_EXPECTED[dict]}, got {values!r}")
    kinds = {f.name: _field_kind(f) for f in fields(_SUB_PARAMS[section])}
    unknown = sorted(map(str, set(values) - set(kinds)))
    if unknown:
        raise ConfigError(f"unknown {section} parameters{where}: {unknown}; known: {sorted(kinds)}")
    return {key: _coerce_option(f"{section}.{key}", value, *kinds[key], where) for key, value in values.items()}


def coerce_options(values: dict, where: str = "") -> dict:
    """Option name -> value, each converted to its TrainConfig field's type by ``coerce`` (sections per
    parameter). Raises ConfigError on an unknown name or a value that cannot be converted, naming the
    option, the value and the expected type; ``where`` (e.g. " in 'run.yaml'") goes into the message."""
    kinds = {f.name: _field_kind(f) for f in fields(TrainConfig)}
    unknown = sorted(map(str, set(values) - set(kinds)))
    if unknown:
        raise ConfigError(f"unknown options{where}: {unknown}; see --help for the names")
    converted = {}
    for name, value in values.items():
        kind, optional = kinds[name]
        if kind is dict:
            converted[name] = _coerce_section(name, value, where)
        else:
            converted[name] = _coerce_option(name, value, kind, optional, where)
    return converted


def _flag_type(kind: type):
    """argparse ``type=`` for an option of ``kind``: ``coerce``, with argparse's error on bad text."""
    def parse(text: str):
        try:
            return coerce(text, kind)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {_EXPECTED[kind]}, got {text!r}") from None

    return parse


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser of every option; all defaults are SUPPRESS so only given flags come back."""
    parser = argparse.ArgumentParser(
        prog="python training/train.py",
        description="Train a 5-channel Color Stroke + Canny ControlNet for SD 1.5. Options come from the "
        "defaults, then --config FILE.yaml (same names; strokes:/edges: sections), then these flags.",
        argument_default=argparse.SUPPRESS,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--config", help="YAML file of options (flags given here override it)")
    groups = {}
    for f in fields(TrainConfig):
        if f.name in _SUB_PARAMS:
            continue
        group_name = f.metadata["group"]
        group = groups.get(group_name) or groups.setdefault(group_name, parser.add_argument_group(group_name))
        kind, _ = _field_kind(f)
        help_text = f.metadata["help"] + (f" (default: {f.default})" if f.default is not None else "")
        if kind is bool:
            group.add_argument(f"--{f.name}", action=argparse.BooleanOptionalAction, help=help_text)
        else:
            choices = [c for c in f.metadata["choices"] or () if c is not None] or None
            const = f.metadata["flag_const"]
            extra = {"nargs": "?", "const": const} if const is not None else {}
            group.add_argument(f"--{f.name}", type=_flag_type(kind), choices=choices, help=help_text, **extra)
    for section, params in _SUB_PARAMS.items():
        group = parser.add_argument_group(section, f"preprocessors.{params.__name__} fields")
        for f in fields(params):
            group.add_argument(
                f"--{section}.{f.name}",
                dest=f"{section}.{f.name}",
                type=_flag_type(_field_kind(f)[0]),
                help=f"{_SUB_HELP[section].get(f.name, f'see preprocessors.{params.__name__}')} (default: "
                f"{','.join(map(str, f.default)) if isinstance(f.default, tuple) else f.default})",
            )
    return parser


def load_yaml(path: str | os.PathLike) -> dict:
    """Read a YAML mapping of options, each converted to its field's type (``coerce_options``); raise
    ConfigError on a missing file, bad YAML, unknown keys or values of the wrong type."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist")
    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as error:
        raise ConfigError(f"config file {str(path)!r} is not valid YAML: {error}") from None
    if not isinstance(values, dict):
        raise ConfigError(f"config file {str(path)!r} must hold a mapping of option: value")
    return coerce_options(values, f" in {str(path)!r}")


def parse_config(argv: list[str] | None = None) -> TrainConfig:
    """Defaults < YAML (--config) < flags -> a validated TrainConfig."""
    given = vars(build_parser().parse_args(argv))
    from_file = load_yaml(given.pop("config")) if "config" in given else {}
    values = {}
    demo = given.get("demo", from_file.get("demo"))
    if demo:
        values = {key: dict(value) if isinstance(value, dict) else value for key, value in DEMO_DEFAULTS.items()}
        values["export_name"] = f"demo_tiny_colorstroke_not_{demo}"
    for key, value in from_file.items():
        if key in _SUB_PARAMS:
            values.setdefault(key, {}).update(value)
        else:
            values[key] = value
    for key, value in given.items():
        if "." in key:
            section, name = key.split(".", 1)
            values.setdefault(section, {})[name] = value
        else:
            values[key] = value
    return TrainConfig(**values).validate()

"""The training loop on a tiny base on CPU: checkpoints, export, exact resume, caching, signals, NaN, divergence,
full disk."""
import errno
import functools
import json
import math
import os
import signal

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from model import load_checkpoint
from preprocessors import EdgeParams
from tests.helpers import tiny_config
from training import checkpointing, loop
from training.divergence import DivergenceGuard
from training.loop import Trainer, TrainingError


def weights(path):
    return load_file(str(path))


def test_few_steps_write_a_loadable_checkpoint(tiny_base, image_folder, tmp_path):
    config = tiny_config(tiny_base, image_folder, tmp_path / "run", max_train_steps=3)
    result = Trainer(config).run()
    assert result.step == 3 and all(math.isfinite(x) for x in result.losses)
    assert result.export_path == tmp_path / "run" / "control_colorstroke_sd15.safetensors"
    model, metadata = load_checkpoint(result.export_path, family=None)
    assert metadata["hint_format"] == "color_stroke_canny" and metadata["edge_polarity"] == "white_on_black"
    assert metadata["training_step"] == 3 and metadata["layout"] == "ldm"
    assert "canny_low" not in metadata and "canny_high" not in metadata, "no host would read them"
    assert json.loads(metadata["canny_training"]) == EdgeParams().to_dict()  # what training drew thresholds from
    assert model.controlnet_cond_embedding.conv_in.in_channels == 5
    assert [p.name for p in checkpointing.list_checkpoints(config.output_dir)] == ["step-0000002", "step-0000003"]
    assert (result.checkpoint / "control_colorstroke_sd15.safetensors").is_file()
    grid = result.validation[-1]
    assert grid["path"].is_file() and 0.0 <= grid["edge_f1"] <= 1.0


def test_overfitting_one_batch_lowers_the_loss(tiny_base, tmp_path):
    from tests.helpers import write_folder

    data = write_folder(tmp_path / "one", count=2)
    config = tiny_config(tiny_base, data, tmp_path / "run", learning_rate=2e-3, caption_dropout=0.0, train_batch_size=1,
                         num_validation_samples=1, max_grad_norm=0.0)
    trainer = Trainer(config)
    trainer._setup()
    batch = next(iter(trainer._loader()))
    fixed = trainer.generator.get_state()

    def fixed_loss():
        trainer.generator.set_state(fixed)
        with torch.no_grad():
            return float(trainer.loss(batch))

    before = fixed_loss()
    for _ in range(25):
        trainer.generator.set_state(fixed)  # the same noise and timestep: a pure fitting problem
        trainer._train_step([batch])
    assert fixed_loss() < 0.5 * before


def run_until(config, stop_at=None):
    def on_step(trainer, step):
        if step == stop_at:
            raise KeyboardInterrupt("killed")

    try:
        return Trainer(config, on_step=on_step).run()
    except KeyboardInterrupt:
        return None


def test_killed_and_resumed_run_ends_with_the_same_weights(tiny_base, image_folder, tmp_path):
    common = dict(max_train_steps=6, checkpointing_steps=2, use_ema=True, crop="random", random_flip=True,
                  gradient_accumulation_steps=2, lr_scheduler="cosine", lr_warmup_steps=1)
    straight = Trainer(tiny_config(tiny_base, image_folder, tmp_path / "a", **common)).run()
    assert run_until(tiny_config(tiny_base, image_folder, tmp_path / "b", **common), stop_at=5) is None
    assert checkpointing.list_checkpoints(tmp_path / "b")[-1].name == "step-0000004"  # step 5 was lost
    resumed = Trainer(tiny_config(tiny_base, image_folder, tmp_path / "b", resume_from_checkpoint="latest",
                                  **common)).run()
    assert resumed.step == 6 and resumed.losses == straight.losses[4:]
    a, b = weights(straight.export_path), weights(resumed.export_path)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    a, b = (weights(r.checkpoint / "model.safetensors") for r in (straight, resumed))
    assert all(torch.equal(a[k], b[k]) for k in a)  # the raw (non-EMA) weights too


def test_latent_and_caption_caches_give_the_same_loss(tiny_base, image_folder, tmp_path):
    losses = {}
    for cached in (True, False):
        config = tiny_config(tiny_base, image_folder, tmp_path / f"c{cached}", max_train_steps=8, checkpointing_steps=0,
                             cache_latents="yes" if cached else "no", cache_text_embeddings=cached)
        trainer = Trainer(config)
        losses[cached] = trainer.run().losses
        assert (len(trainer.latents.cache) > 0) == cached and (len(trainer.embed.cache) > 0) == cached
    assert np.allclose(losses[True], losses[False], rtol=1e-5, atol=1e-6)


def test_sigterm_saves_a_checkpoint_then_resume_finishes(tiny_base, image_folder, tmp_path):
    config = tiny_config(tiny_base, image_folder, tmp_path / "run", max_train_steps=5, checkpointing_steps=0)

    def preempt(trainer, step):
        if step == 3:
            os.kill(os.getpid(), signal.SIGTERM)

    handler_before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(SystemExit) as stopped:
        Trainer(config, on_step=preempt).run()
    assert stopped.value.code == 128 + signal.SIGTERM
    assert [p.name for p in checkpointing.list_checkpoints(config.output_dir)] == ["step-0000003"]
    assert signal.getsignal(signal.SIGTERM) == handler_before  # the trainer's handler is gone again
    config = tiny_config(tiny_base, image_folder, tmp_path / "run", max_train_steps=5, checkpointing_steps=0,
                         resume_from_checkpoint="latest")
    assert Trainer(config).run().step == 5


def test_nan_loss_is_skipped_then_stops(tiny_base, image_folder, tmp_path, monkeypatch):
    real_loss = Trainer.loss
    calls = {"n": 0}

    def sometimes_nan(self, batch):
        calls["n"] += 1
        loss = real_loss(self, batch)
        return loss * float("nan") if calls["n"] == 2 else loss

    monkeypatch.setattr(Trainer, "loss", sometimes_nan)
    config = tiny_config(tiny_base, image_folder, tmp_path / "one_nan", max_train_steps=3, checkpointing_steps=0)
    with pytest.warns(UserWarning, match="NaN"):
        result = Trainer(config).run()
    assert result.step == 3 and math.isnan(result.losses[1]) and math.isfinite(result.losses[2])
    assert all(torch.isfinite(v).all() for v in weights(result.export_path).values())

    monkeypatch.setattr(Trainer, "loss", lambda self, batch: real_loss(self, batch) * float("nan"))
    config = tiny_config(tiny_base, image_folder, tmp_path / "all_nan", max_train_steps=10, max_nan_steps=3)
    with pytest.warns(UserWarning), pytest.raises(TrainingError, match="3 optimiser steps in a row"):
        Trainer(config).run()


def test_a_diverged_run_stops_before_saving_and_names_the_checkpoint_before_it(tiny_base, image_folder, tmp_path,
                                                                                monkeypatch):
    real_loss = Trainer.loss
    monkeypatch.setattr(Trainer, "loss", lambda self, batch: real_loss(self, batch) * (1e4 if self.step >= 12 else 1))
    monkeypatch.setattr(loop, "DivergenceGuard", functools.partial(DivergenceGuard, recent=3, baseline=20,
                                                                   min_baseline=5))
    config = tiny_config(tiny_base, image_folder, tmp_path / "run", max_train_steps=30, checkpointing_steps=5,
                         checkpoints_total_limit=2, colour_phase_start=1)
    with pytest.raises(TrainingError, match="diverged") as stopped:
        Trainer(config).run()
    good = tmp_path / "run" / "checkpoints" / "step-0000010"
    assert f"--resume_from_checkpoint {good}" in str(stopped.value) and "steps 12-14" in str(stopped.value)
    # the loss jumps at step 13, the run stops at 14: the good checkpoints stay, no export of the diverged model
    assert [p.name for p in checkpointing.list_checkpoints(config.output_dir)] == ["step-0000005", "step-0000010"]
    assert not (tmp_path / "run" / f"{config.export_name}.safetensors").exists()


def test_full_disk_during_checkpoint_keeps_the_previous_one(tiny_base, image_folder, tmp_path, monkeypatch):
    real_save = torch.save

    def disk_full_at_step_4(obj, path, *args, **kwargs):
        if isinstance(obj, dict) and obj.get("step") == 4:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(obj, path, *args, **kwargs)

    monkeypatch.setattr(checkpointing.torch, "save", disk_full_at_step_4)
    config = tiny_config(tiny_base, image_folder, tmp_path / "run", max_train_steps=5, checkpointing_steps=2)
    result = Trainer(config).run()
    names = sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir())
    assert names == ["step-0000002", "step-0000005"]  # 4 failed cleanly: no partial folder left
    assert checkpointing.resolve(config.output_dir, "latest").name == "step-0000005" and result.step == 5

"""Our training step against a plain reference step shaped like diffusers' ControlNet example.

Both run in this process on the same ControlNet, base, batches (already loaded: data loading is not
timed) and precision. The reference encodes every batch with the VAE (sampling the latent) and every
caption with the text encoder, as the example does; ours uses the trainer's step (cached latent
distributions and caption embeddings, the empty-prompt embedding computed once). Prints samples/s and
peak memory (CUDA: max allocated; CPU: peak resident set growth) of both and their ratios.

    python -m benchmarks.bench_train                 # tiny random base, 64 px, CPU: runs anywhere
    python -m benchmarks.bench_train --family sdxl   # the tiny SDXL-shaped base (two text encoders, size ids)
    python -m benchmarks.bench_train --sd15          # SD 1.5-sized random weights, 512 px, bf16 (GPU)
    python -m benchmarks.bench_train --sdxl --batch_size 1 --gradient_checkpointing   # SDXL-sized, 1024 px (GPU)
    python -m benchmarks.bench_train --sd15 --memory_fraction 0.3   # e.g. cap an 80 GB GPU at 24 GB
    python -m benchmarks.bench_train --lora_rank 128  # also ours as a control-LoRA of rank 128 against ours in full

``--lora_rank R`` adds a third row: our step on a control-LoRA ControlNet (``--lora_rank`` of the trainer) on the same
base and batches, with its ratio to our full step; and the trainer's estimate of weights + gradients + optimiser state
for both (on the CPU the measured peak is the growth during the timed steps, which leaves out the optimiser state
allocated in the warm-up; on CUDA it is the whole allocation).

For SDXL the reference takes the caption embeddings precomputed, as diffusers' SDXL ControlNet example does.
"""
from __future__ import annotations

import argparse
import gc
import json
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path

import torch

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def sd15_shaped_base(folder: Path) -> Path:
    """Save a randomly initialised base with SD 1.5's shapes (UNet 860M, VAE, CLIP ViT-L text encoder)."""
    from diffusers import AutoencoderKL, DDPMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    from training.tiny_base import write_tiny_tokenizer

    unet = UNet2DConditionModel(sample_size=64, cross_attention_dim=768, attention_head_dim=8)
    vae = AutoencoderKL(
        block_out_channels=(128, 256, 512, 512), down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4, layers_per_block=2, latent_channels=4, sample_size=512,
    )
    text_encoder = CLIPTextModel(CLIPTextConfig(hidden_size=768, intermediate_size=3072, num_attention_heads=12,
                                                num_hidden_layers=12, projection_dim=768, vocab_size=49408,
                                                max_position_embeddings=77))
    tokens = write_tiny_tokenizer(folder / "_tokenizer")
    tokenizer = CLIPTokenizer(str(tokens / "vocab.json"), str(tokens / "merges.txt"), model_max_length=77)
    scheduler = DDPMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, steps_offset=1,
                              clip_sample=False)
    StableDiffusionPipeline(unet=unet, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, scheduler=scheduler,
                            safety_checker=None, feature_extractor=None, requires_safety_checker=False
                            ).save_pretrained(folder / "base")
    return folder / "base"


def sdxl_shaped_base(folder: Path) -> Path:
    """Save a randomly initialised base with SDXL's shapes (UNet 2.6 B with the text_time embedding, VAE, CLIP ViT-L
    and OpenCLIP ViT-bigG text encoders) as a diffusers SDXL folder."""
    from diffusers import AutoencoderKL, DDPMScheduler, StableDiffusionXLPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

    from model.families import SDXL_UNET_CONFIG
    from training.tiny_base import write_tiny_tokenizer

    unet = UNet2DConditionModel(**SDXL_UNET_CONFIG)
    vae = AutoencoderKL(
        block_out_channels=(128, 256, 512, 512), down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4, layers_per_block=2, latent_channels=4, sample_size=1024,
        scaling_factor=0.13025)
    text_encoder = CLIPTextModel(CLIPTextConfig(hidden_size=768, intermediate_size=3072, num_attention_heads=12,
                                                num_hidden_layers=12, projection_dim=768, vocab_size=49408,
                                                max_position_embeddings=77))
    text_encoder_2 = CLIPTextModelWithProjection(CLIPTextConfig(
        hidden_size=1280, intermediate_size=5120, num_attention_heads=20, num_hidden_layers=32, projection_dim=1280,
        vocab_size=49408, max_position_embeddings=77, hidden_act="gelu"))
    tokens = write_tiny_tokenizer(folder / "_tokenizer")
    tokenizer = CLIPTokenizer(str(tokens / "vocab.json"), str(tokens / "merges.txt"), model_max_length=77)
    scheduler = DDPMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, steps_offset=1,
                              clip_sample=False)
    StableDiffusionXLPipeline(unet=unet, vae=vae, text_encoder=text_encoder, text_encoder_2=text_encoder_2,
                              tokenizer=tokenizer, tokenizer_2=tokenizer, scheduler=scheduler, add_watermarker=False
                              ).save_pretrained(folder / "base")
    return folder / "base"


def reference_step(trainer, batch) -> float:
    """One optimiser step the way diffusers' examples do it: the VAE on every batch; the text encoder on every batch
    (SD 1.5's example) or the caption embeddings computed before training (SDXL's: the trainer's cached ones)."""
    from training.encoders import TextEmbedder

    base, device, dtype = trainer.base, trainer.accelerator.device, trainer.weight_dtype
    with torch.no_grad():
        latents = base.vae.encode(batch["pixels"].to(device, trainer.vae_dtype)).latent_dist.sample().to(dtype)
        latents = latents * base.vae.config.scaling_factor
        embed = trainer.embed if base.family == "sdxl" else TextEmbedder(base.text_encoders, device, dtype)
        text = embed(batch["caption"]).unet_kwargs(batch["size_ids"].to(device, dtype))
    noise = torch.randn_like(latents)
    timesteps = torch.randint(0, base.noise_scheduler.config.num_train_timesteps, (latents.shape[0],), device=device)
    noisy = base.noise_scheduler.add_noise(latents, noise, timesteps)
    hint = batch["hint"].to(device, dtype)
    with trainer.accelerator.autocast():
        down, mid = trainer.controlnet(noisy, timesteps, controlnet_cond=hint, return_dict=False, **text)
        prediction = base.unet(noisy, timesteps, **text,
                               down_block_additional_residuals=[d.to(dtype) for d in down],
                               mid_block_additional_residual=mid.to(dtype)).sample
    loss = torch.nn.functional.mse_loss(prediction.float(), noise.float())
    trainer.accelerator.backward(loss)
    trainer.accelerator.clip_grad_norm_(trainer.controlnet.parameters(), 1.0)
    trainer.optimizer.step()
    trainer.lr_scheduler.step()
    trainer.optimizer.zero_grad(set_to_none=True)
    return float(loss.detach())


class PeakMemory:
    """Peak memory while the block runs: CUDA max allocated, else the growth of the resident set (psutil)."""

    def __init__(self, device):
        self.cuda = device.type == "cuda"

    def __enter__(self):
        if self.cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            return self
        import psutil

        self.process, self.start, self.peak, self.running = psutil.Process(), None, 0, True
        self.start = self.process.memory_info().rss
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        return self

    def _sample(self):
        while self.running:
            self.peak = max(self.peak, self.process.memory_info().rss - self.start)
            time.sleep(0.005)

    def __exit__(self, *exc):
        if self.cuda:
            torch.cuda.synchronize()
            self.bytes = torch.cuda.max_memory_allocated()
        else:
            self.running = False
            self.thread.join()
            self.bytes = self.peak


def measure(step, trainer, batches, warmup: int) -> tuple[float, int]:
    """(samples/s, peak bytes) of ``step`` over ``batches`` after ``warmup`` untimed steps."""
    for batch in batches[:warmup]:
        step(batch)
    device = trainer.accelerator.device
    with PeakMemory(device) as memory:
        started = time.perf_counter()
        for batch in batches[warmup:]:
            step(batch)
        if device.type == "cuda":
            torch.cuda.synchronize()
        elapsed = time.perf_counter() - started
    return sum(b["size"] for b in batches[warmup:]) / elapsed, memory.bytes


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--family", choices=("sd15", "sdxl"), default="sd15", help="the tiny base's family")
    parser.add_argument("--sd15", action="store_true", help="SD 1.5-sized random base at 512 px in bf16 (needs a GPU)")
    parser.add_argument("--sdxl", action="store_true", help="SDXL-sized random base at 1024 px in bf16 (needs a GPU)")
    parser.add_argument("--use_8bit_adam", action="store_true", help="bitsandbytes' 8-bit AdamW (CUDA)")
    parser.add_argument("--batch_size", type=int, default=None,
                        help="samples per step (default 4 tiny, 8 SD 1.5, 1 SDXL)")
    parser.add_argument("--steps", type=int, default=None, help="timed steps per side (default 12 tiny, 10 SD 1.5)")
    parser.add_argument("--mixed_precision", default=None, choices=("no", "fp16", "bf16"))
    parser.add_argument("--gradient_checkpointing", action="store_true")
    parser.add_argument("--memory_fraction", type=float, default=None,
                        help="torch.cuda.set_per_process_memory_fraction")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures to this JSON file")
    parser.add_argument("--lora_rank", type=int, default=0,
                        help="also time our step on a control-LoRA of this rank (the trainer's --lora_rank)")
    parser.add_argument("--base_dir", type=Path, default=None,
                        help="keep the random full-size base here and reuse it when it is there (it takes minutes)")
    args = parser.parse_args(argv)
    from benchmarks.toyworld.stages import write_images
    from training.config import TrainConfig
    from training.loop import Trainer
    from training.tiny_base import save_tiny_base

    if args.memory_fraction:
        torch.cuda.set_per_process_memory_fraction(args.memory_fraction)
    full = args.sd15 or args.sdxl
    family = "sdxl" if args.sdxl else "sd15" if args.sd15 else args.family
    batch_size = args.batch_size or (1 if args.sdxl else 8 if args.sd15 else 4)
    steps, warmup = args.steps or (10 if full else 12), 2
    resolution = 1024 if args.sdxl else 512 if args.sd15 else 64
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if full:
            kept = args.base_dir / "base" if args.base_dir else None
            if kept is not None and (kept / "model_index.json").is_file():
                base = kept
            else:
                base = (sdxl_shaped_base if args.sdxl else sd15_shaped_base)(args.base_dir or tmp)
        else:
            base = save_tiny_base(tmp / "base", family=family)
        # an epoch is the 2 warm-up batches: ours is timed in its steady state, its caches filled during
        # the first epoch as in any run longer than one epoch; the reference has no cache to fill
        data = write_images(tmp / "images", batch_size * warmup + 1, resolution + 32)  # toy-world pictures, 1 held out
        config = TrainConfig(
            base_model=str(base), data=str(data), output_dir=str(tmp / "out"), allow_non_sd15=not full,
            resolution=resolution, train_batch_size=batch_size, gradient_accumulation_steps=1, num_workers=0,
            mixed_precision=args.mixed_precision or ("bf16" if full else "no"), report_to="none",
            gradient_checkpointing=args.gradient_checkpointing, num_validation_samples=1, validation_steps=0,
            checkpointing_steps=0,
            use_8bit_adam=args.use_8bit_adam,
        ).validate()
        trainer = Trainer(config)
        trainer._setup()
        loader = iter(trainer._loader())
        batches = [next(loader) for _ in range(steps + warmup)]
        ref_speed, ref_memory = measure(lambda b: reference_step(trainer, b), trainer, batches, warmup)
        ours_speed, ours_memory = measure(lambda b: trainer._train_step([b]), trainer, batches, warmup)
        device, lora = trainer.accelerator.device, None
        if args.lora_rank:
            estimate = trainer.state_bytes() / 2**30
            trainer.accelerator.free_memory()  # the full run's weights and optimiser state go before the LoRA's come
            del trainer
            gc.collect()
            if device.type == "cuda":
                torch.cuda.empty_cache()
            trainer = Trainer(replace(config, lora_rank=args.lora_rank, output_dir=str(tmp / "lora")))
            trainer._setup()
            speed, memory = measure(lambda b: trainer._train_step([b]), trainer, batches, warmup)
            lora = {"rank": args.lora_rank, "samples_per_s": speed, "peak_mib": memory / 2**20,
                    "state_gib": trainer.state_bytes() / 2**30, "full_state_gib": estimate}
    name = torch.cuda.get_device_name() if device.type == "cuda" else "CPU"
    size = f"{'SDXL' if family == 'sdxl' else 'SD 1.5'}-{'sized' if full else 'shaped tiny'}"
    print(f"device {name}, {size} base, {resolution} px, batch {batch_size}, {config.mixed_precision}"
          f"{', gradient checkpointing' if args.gradient_checkpointing else ''}"
          f"{', 8-bit Adam' if args.use_8bit_adam else ''}, {steps} timed steps each")
    print(f"{'':12}{'samples/s':>12}{'peak MiB':>12}")
    print(f"{'reference':12}{ref_speed:12.2f}{ref_memory / 2**20:12.0f}")
    print(f"{'ours':12}{ours_speed:12.2f}{ours_memory / 2**20:12.0f}")
    print(f"ratio ours/reference: speed x{ours_speed / ref_speed:.2f}, peak memory "
          f"x{ours_memory / max(ref_memory, 1):.2f}")
    if lora:
        print(f"{'ours LoRA':12}{lora['samples_per_s']:12.2f}{lora['peak_mib']:12.0f}   (rank {lora['rank']})")
        print(f"ratio ours LoRA/ours full: speed x{lora['samples_per_s'] / ours_speed:.2f}, peak memory "
              f"x{lora['peak_mib'] * 2**20 / max(ours_memory, 1):.2f}; weights + gradients + optimiser state "
              f"(the trainer's estimate) {lora['state_gib']:.3f} GiB against {lora['full_state_gib']:.3f} GiB")
    if args.json:
        args.json.write_text(json.dumps({
            "device": name, "base": f"{family}-{'sized' if full else 'tiny'}", "resolution": resolution,
            "use_8bit_adam": args.use_8bit_adam,
            "batch_size": batch_size, "mixed_precision": config.mixed_precision, "timed_steps": steps,
            "gradient_checkpointing": args.gradient_checkpointing,
            "reference": {"samples_per_s": ref_speed, "peak_mib": ref_memory / 2**20},
            "ours": {"samples_per_s": ours_speed, "peak_mib": ours_memory / 2**20},
            "speed_ratio": ours_speed / ref_speed, "memory_ratio": ours_memory / max(ref_memory, 1),
            "lora": lora,
        }, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())

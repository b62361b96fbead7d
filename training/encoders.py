"""The frozen encoders around the ControlNet, with their caches.

``TextEmbedder``: captions -> ``TextCondition``: the hidden states Bx77xD the UNet cross-attends to (SD 1.5: CLIP's
last layer; SDXL: the penultimate layers of both text encoders, concatenated) and, for SDXL, the pooled text BxP of
the second encoder. The empty prompt is encoded once, other captions are cached (LRU, on the CPU) because the text
encoders never change.
``LatentEncoder``: pixels -> VAE latents Bx4xH/8xW/8 scaled by the VAE's scaling factor; the latent
distribution (mean and log-variance) of each dataset index can be cached, and a latent is always
drawn from it with the caller's generator, so a cached and an uncached run draw the same latents.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import torch


@dataclass
class TextCondition:
    """hidden: BxTxD text embeddings; pooled: BxP pooled text (SDXL's ``text_embeds``), None for SD 1.5."""

    hidden: torch.Tensor
    pooled: torch.Tensor | None = None

    def unet_kwargs(self, size_ids: torch.Tensor | None = None) -> dict:
        """The text keyword arguments of a diffusers UNet or ControlNet call. size_ids: Bx6 SDXL ``time_ids``
        (original height, width, crop top, left, target height, width in pixels), needed with a pooled text."""
        kwargs = {"encoder_hidden_states": self.hidden}
        if self.pooled is not None:
            kwargs["added_cond_kwargs"] = {"text_embeds": self.pooled, "time_ids": size_ids}
        return kwargs


class TextEmbedder:
    """encoders: [(tokenizer, text encoder)] (``BaseModel.text_encoders``): one is SD 1.5's conditioning, two are
    SDXL's (hidden states from the penultimate layers; the pooled text from the last encoder's projection)."""

    def __init__(self, encoders, device, dtype, cache_size: int = 0):
        self.encoders, self.device, self.dtype = list(encoders), device, dtype
        self.cache_size, self.cache = cache_size, OrderedDict()
        self.empty = self._encode([""])[0]

    @torch.no_grad()
    def _encode(self, captions: list[str]) -> list[tuple]:
        """One (hidden Tx D, pooled P or None) per caption."""
        hidden, pooled = [], None
        penultimate = len(self.encoders) > 1
        for tokenizer, encoder in self.encoders:
            tokens = tokenizer(captions, padding="max_length", max_length=tokenizer.model_max_length,
                               truncation=True, return_tensors="pt").input_ids.to(self.device)
            output = encoder(tokens, output_hidden_states=penultimate, return_dict=True)
            hidden.append(output.hidden_states[-2] if penultimate else output.last_hidden_state)
            pooled = getattr(output, "text_embeds", None)
        hidden = torch.cat(hidden, dim=-1).to(self.dtype)
        pooled = pooled.to(self.dtype) if penultimate else None
        return [(hidden[i], None if pooled is None else pooled[i]) for i in range(len(captions))]

    def __call__(self, captions: list[str]) -> TextCondition:
        """The conditioning of ``captions`` ('' = the empty prompt) on the device, in the frozen dtype."""
        todo = sorted({c for c in captions if c and c not in self.cache})
        fresh = dict(zip(todo, self._encode(todo), strict=True)) if todo else {}
        rows = []
        for caption in captions:
            if not caption:
                rows.append(self.empty)
            elif caption in fresh:
                rows.append(fresh[caption])
            else:
                self.cache.move_to_end(caption)
                rows.append(tuple(None if t is None else t.to(self.device, non_blocking=True)
                                  for t in self.cache[caption]))
        for caption, embedding in fresh.items():
            if self.cache_size:
                self.cache[caption] = tuple(None if t is None else t.cpu() for t in embedding)
                if len(self.cache) > self.cache_size:
                    self.cache.popitem(last=False)
        hidden, pooled = zip(*rows, strict=True)
        return TextCondition(torch.stack(hidden), None if pooled[0] is None else torch.stack(pooled))


class VaeOverflowError(ArithmeticError):
    """The VAE turned images into NaN/inf latents (SDXL's VAE overflows in fp16); the message says what to do."""


class LatentEncoder:
    """dtype: the latents' dtype (the UNet's); the VAE encodes in its own (fp32 for SDXL's under fp16)."""

    def __init__(self, vae, device, dtype, cache_size: int = 0):
        self.vae, self.device, self.dtype, self.cache_size = vae, device, dtype, cache_size
        self.scaling = vae.config.scaling_factor
        self.shift = getattr(vae.config, "shift_factor", None) or 0.0
        self.cache = {}

    @torch.no_grad()
    def moments(self, pixels: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
        """Bx(2C)xhxw latent mean and log-variance of pixels Bx3xHxW in [-1, 1]; cached by dataset index."""
        keys = indices.tolist()
        missing = [i for i, key in enumerate(keys) if key not in self.cache]
        encoded = {}
        if missing:
            batch = pixels[missing].to(self.device, self.vae.dtype)
            parameters = self._finite(self.vae.encode(batch).latent_dist.parameters)
            encoded = dict(zip(missing, parameters, strict=True))
            for i in missing:
                if len(self.cache) < self.cache_size:
                    self.cache[keys[i]] = encoded[i].cpu()
        return torch.stack([encoded[i] if i in encoded else self.cache[key].to(self.device)
                            for i, key in enumerate(keys)])

    @torch.no_grad()
    def mode(self, pixels: torch.Tensor) -> torch.Tensor:
        """Bx4xhxw latents of the distribution means of pixels Bx3xHxW in [-1, 1], scaled for the UNet (for
        measuring, where no draw is wanted)."""
        mean = self._finite(self.vae.encode(pixels.to(self.device, self.vae.dtype)).latent_dist.mode()).float()
        return (mean - self.shift) * self.scaling

    def _finite(self, latents: torch.Tensor) -> torch.Tensor:
        """``latents``, or VaeOverflowError when any is NaN/inf."""
        if not torch.isfinite(latents).all():
            raise VaeOverflowError(
                f"the VAE encoded training images to NaN/inf latents in {self.vae.dtype}: SDXL's own VAE overflows in "
                "fp16. Run the VAE in fp32 (--vae_dtype fp32), or pass an fp16-safe VAE with --vae (a diffusers "
                "folder such as madebyollin/sdxl-vae-fp16-fix)")
        return latents

    def sample(self, moments: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """A latent drawn from N(mean, exp(logvar)) with ``generator``, scaled for the UNet."""
        mean, logvar = moments.float().chunk(2, dim=1)
        std = torch.exp(0.5 * logvar.clamp(-30.0, 20.0))
        noise = torch.randn(mean.shape, generator=generator, device=mean.device)
        return ((mean + std * noise - self.shift) * self.scaling).to(self.dtype)

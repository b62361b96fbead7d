"""The frozen encoders around the ControlNet, with their caches.

``TextEmbedder``: captions -> CLIP hidden states Bx77xD; the empty prompt is encoded once, other
captions are cached (LRU, on the CPU) because the text encoder never changes.
``LatentEncoder``: pixels -> VAE latents Bx4xH/8xW/8 scaled by the VAE's scaling factor; the latent
distribution (mean and log-variance) of each dataset index can be cached, and a latent is always
drawn from it with the caller's generator, so a cached and an uncached run draw the same latents.
"""
from __future__ import annotations

from collections import OrderedDict

import torch


class TextEmbedder:
    def __init__(self, tokenizer, text_encoder, device, dtype, cache_size: int = 0):
        self.tokenizer, self.text_encoder, self.device, self.dtype = tokenizer, text_encoder, device, dtype
        self.cache_size, self.cache = cache_size, OrderedDict()
        self.empty = self._encode([""])[0]

    @torch.no_grad()
    def _encode(self, captions: list[str]) -> torch.Tensor:
        tokens = self.tokenizer(captions, padding="max_length", max_length=self.tokenizer.model_max_length,
                                truncation=True, return_tensors="pt").input_ids.to(self.device)
        return self.text_encoder(tokens, return_dict=False)[0].to(self.dtype)

    def __call__(self, captions: list[str]) -> torch.Tensor:
        """Bx77xD embeddings of ``captions`` ('' = the empty prompt) on the device, in the frozen dtype."""
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
                rows.append(self.cache[caption].to(self.device, non_blocking=True))
        for caption, embedding in fresh.items():
            if self.cache_size:
                self.cache[caption] = embedding.cpu()
                if len(self.cache) > self.cache_size:
                    self.cache.popitem(last=False)
        return torch.stack(rows)


class LatentEncoder:
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
            batch = pixels[missing].to(self.device, self.dtype)
            parameters = self.vae.encode(batch).latent_dist.parameters
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
        mean = self.vae.encode(pixels.to(self.device, self.dtype)).latent_dist.mode().float()
        return (mean - self.shift) * self.scaling

    def sample(self, moments: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """A latent drawn from N(mean, exp(logvar)) with ``generator``, scaled for the UNet."""
        mean, logvar = moments.float().chunk(2, dim=1)
        std = torch.exp(0.5 * logvar.clamp(-30.0, 20.0))
        noise = torch.randn(mean.shape, generator=generator, device=mean.device)
        return ((mean + std * noise - self.shift) * self.scaling).to(self.dtype)

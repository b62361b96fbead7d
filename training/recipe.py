"""What one loss sees beyond the plain ControlNet recipe: which timesteps, how each is weighted, and
the learning rate of the newly initialised parts.

Why (measured in the toy world, see docs and ``benchmarks/results/toyworld/ablation.json``): the strokes
carry what the noisy latent does not, so they pay off at high noise; with epsilon prediction a colour
error in x0 costs SNR(t) times as much there, and SNR(t) is ~0.005 at t = 999 against ~2 at t = 250 on
SD 1.5's schedule. Sampling more high-noise timesteps and flattening that weighting shifts the gradient
towards the colour the strokes set.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from model.build import NEW_PARTS

TIMESTEP_SAMPLINGS = ("uniform", "cubic", "high")


def sample_timesteps(kind: str, uniform_prob: float, batch: int, num_train_timesteps: int,
                     generator: torch.Generator, device) -> torch.Tensor:
    """B int64 timesteps in [0, T).

    kind: "uniform" (the plain recipe); "cubic", t = (1 - u^3) T, T2I-Adapter's Eq. 7, which favours high
    noise; "high", t ~ U[T/2, T). uniform_prob: each sample is drawn uniformly instead with this
    probability (a mix; 0 = none, 1 = all uniform). Draws from ``generator`` in a fixed order: u, then the mix.
    """
    u = torch.rand(batch, generator=generator, device=device)
    chosen = timesteps_of(kind, u, num_train_timesteps)
    if kind != "uniform" and uniform_prob > 0:
        mix = torch.rand(batch, generator=generator, device=device) < uniform_prob
        chosen = torch.where(mix, timesteps_of("uniform", u, num_train_timesteps), chosen)
    return chosen


def timesteps_of(kind: str, u: torch.Tensor, num_train_timesteps: int) -> torch.Tensor:
    """The timesteps (int64 in [0, T)) that sampling ``kind`` gives for uniform draws ``u`` in [0, 1)."""
    if kind not in TIMESTEP_SAMPLINGS:
        raise ValueError(f"timestep sampling must be one of {TIMESTEP_SAMPLINGS}, got {kind!r}")
    steps = num_train_timesteps
    if kind == "uniform":
        t = u * steps
    elif kind == "cubic":
        t = (1 - u**3) * steps
    else:
        t = steps // 2 + u * (steps - steps // 2)
    return t.long().clamp(0, steps - 1)


def snr(alphas_cumprod: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
    """Signal-to-noise ratio alpha_bar / (1 - alpha_bar) of each timestep (float32, on the timesteps' device)."""
    alpha_bar = alphas_cumprod.to(timesteps.device, torch.float32)[timesteps]
    return alpha_bar / (1 - alpha_bar)


def min_snr_weights(alphas_cumprod: torch.Tensor, timesteps: torch.Tensor, gamma: float,
                    prediction_type: str) -> torch.Tensor:
    """B loss weights of Min-SNR-gamma (Hang et al. 2023) for an epsilon or v-prediction loss:
    min(SNR, gamma) / SNR (epsilon), min(SNR, gamma) / (SNR + 1) (v). Low-noise steps, where the noisy
    latent already shows the colour, count less; high-noise steps keep weight 1."""
    ratio = snr(alphas_cumprod, timesteps)
    clipped = torch.clamp(ratio, max=gamma)
    return clipped / (ratio + 1) if prediction_type == "v_prediction" else clipped / ratio


def x0_error_weight(alphas_cumprod: torch.Tensor, timesteps: torch.Tensor, prediction_type: str) -> torch.Tensor:
    """B factors by which a denoising loss weighs a squared error in x0: SNR (epsilon), SNR + 1 (v)."""
    ratio = snr(alphas_cumprod, timesteps)
    return ratio + 1 if prediction_type == "v_prediction" else ratio


def x0_floor_weights(alphas_cumprod: torch.Tensor, timesteps: torch.Tensor, floor: float,
                     prediction_type: str) -> torch.Tensor:
    """B loss weights that give an error in x0 at least ``floor`` times its squared size at every timestep.

    An epsilon loss weighs an x0 error by SNR (v: SNR + 1), under 0.06 above t = 750 on SD 1.5's schedule, so
    the colour that only the strokes can tell is nearly free to get wrong there. Weight max(SNR, floor) / SNR
    (v: max(SNR + 1, floor) / (SNR + 1)) keeps low-noise steps as they are and lifts high-noise ones to
    ``floor``: the mirror of Min-SNR, which caps the x0 weight at gamma from above."""
    x0_weight = x0_error_weight(alphas_cumprod, timesteps, prediction_type)
    return torch.clamp(x0_weight, min=floor) / x0_weight


class PhaseRecipe:
    """How one phase of training (the edge phase with the run's --timestep_sampling/--x0_weight_floor, the colour
    phase with the --colour_* options) draws its timesteps and weighs each sample's loss.

    The weights are Min-SNR-gamma and/or the x0 floor (their product), divided by their mean under this phase's
    timestep sampling, so that they move weight between timesteps without rescaling the loss (which gradient
    clipping and the learning rate would otherwise feel). ``active`` is False when both are off (0); then
    ``weights`` returns None."""

    def __init__(self, alphas_cumprod: torch.Tensor, min_snr_gamma: float, x0_floor: float, prediction_type: str,
                 sampling: str, uniform_prob: float):
        self.alphas_cumprod, self.gamma, self.floor = alphas_cumprod, min_snr_gamma, x0_floor
        self.prediction_type, self.sampling, self.uniform_prob = prediction_type, sampling, uniform_prob
        self.active = bool(min_snr_gamma or x0_floor)
        self.mean = 1.0
        if self.active:
            grid = (torch.arange(4096, dtype=torch.float64) + 0.5) / 4096  # quantiles of u: the sampling's density
            steps = len(alphas_cumprod)
            chosen = self._raw(timesteps_of(sampling, grid, steps)).mean()
            uniform = self._raw(timesteps_of("uniform", grid, steps)).mean()
            mix = uniform_prob if sampling != "uniform" else 0.0
            self.mean = float((1 - mix) * chosen + mix * uniform)

    def _raw(self, timesteps: torch.Tensor) -> torch.Tensor:
        weights = torch.ones(timesteps.shape, device=timesteps.device)
        if self.gamma:
            weights = weights * min_snr_weights(self.alphas_cumprod, timesteps, self.gamma, self.prediction_type)
        if self.floor:
            weights = weights * x0_floor_weights(self.alphas_cumprod, timesteps, self.floor, self.prediction_type)
        return weights

    def timesteps(self, batch: int, generator: torch.Generator, device) -> torch.Tensor:
        """B int64 timesteps in [0, T) (``sample_timesteps``, T the schedule's length)."""
        return sample_timesteps(self.sampling, self.uniform_prob, batch, len(self.alphas_cumprod), generator, device)

    def weights(self, timesteps: torch.Tensor) -> torch.Tensor | None:
        """B loss weights of mean 1 under this phase's sampling, or None when this phase weighs all alike."""
        return self._raw(timesteps) / self.mean if self.active else None


def phase_recipes(scheduler, config) -> dict[str, PhaseRecipe]:
    """{"edge": the run's first phase, "colour": the colour phase (the --colour_* options)} for ``scheduler``'s
    noise schedule and prediction type and ``config`` (``TrainConfig``)."""
    prediction = scheduler.config.prediction_type
    return {"edge": PhaseRecipe(scheduler.alphas_cumprod, config.min_snr_gamma, config.x0_weight_floor, prediction,
                                config.timestep_sampling, config.timestep_uniform_prob),
            "colour": PhaseRecipe(scheduler.alphas_cumprod, config.min_snr_gamma, config.colour_x0_weight_floor,
                                  prediction, config.colour_timestep_sampling, 0.0)}


def adam_settings(config) -> dict:
    """AdamW's settings besides the learning rate, for a new run's optimiser and for a new phase's."""
    return dict(betas=(config.adam_beta1, config.adam_beta2), weight_decay=config.adam_weight_decay,
                eps=config.adam_epsilon)


def colour_phase_step(start: float, max_train_steps: int) -> int | None:
    """The optimiser step from which the colour phase runs: ``start`` (a fraction in [0, 1]) of the run; None
    when ``start`` is 1 (no colour phase, also when a resumed run is made longer)."""
    return None if start >= 1.0 else round(start * max_train_steps)


def denoising_target(scheduler, latents: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
    """What the UNet predicts for ``latents`` noised with ``noise`` at ``timesteps`` (all fp32): the noise
    (epsilon prediction) or the velocity (``prediction_type == "v_prediction"``)."""
    if scheduler.config.prediction_type == "v_prediction":
        return scheduler.get_velocity(latents, noise, timesteps)
    return noise


def stroke_pixel_weights(hint: torch.Tensor, latent_size, weight: float) -> torch.Tensor:
    """Bx1xhxw weights on the latent pixels: 1 + ``weight`` where a stroke lies (the hint's alpha, channel 4,
    max-pooled to the latent size, so a thin stroke still marks its latent pixel)."""
    alpha = F.adaptive_max_pool2d(hint[:, 4:5].float(), tuple(latent_size))
    return 1.0 + weight * alpha


def weighted_mse(prediction: torch.Tensor, target: torch.Tensor, sample_weights: torch.Tensor | None,
                 pixel_weights: torch.Tensor | None) -> torch.Tensor:
    """Mean squared error, each sample scaled by ``sample_weights`` (B) and each latent pixel by
    ``pixel_weights`` (Bx1xhxw, normalised to mean 1 per sample so that it moves weight between pixels
    without rescaling the loss). Both None: plain MSE."""
    error = (prediction.float() - target.float()) ** 2
    if pixel_weights is not None:
        error = error * (pixel_weights / pixel_weights.mean(dim=(1, 2, 3), keepdim=True))
    per_sample = error.mean(dim=(1, 2, 3))
    if sample_weights is not None:
        per_sample = per_sample * sample_weights
    return per_sample.mean()


def area_colour_error(prediction: torch.Tensor, target: torch.Tensor, areas: torch.Tensor,
                      sample_weights: torch.Tensor | None) -> torch.Tensor:
    """The area colour loss (fp32 scalar): per sample, the mean over its areas, each alike whatever its size, of
    the squared error of the area's mean prediction (averaged over the latent channels); samples scaled by
    ``sample_weights`` (B) and averaged, one with no area counting 0.

    prediction, target: BxCxhxw (epsilon or velocity); areas: BxHxW integer labels at pixel size, 0 = none, 1 .. K
    an area (``preprocessors.fill.fill_and_areas``), H and W whole multiples of h and w; a latent pixel belongs to
    an area in the share of its HxW/(hxw) pixels that lie in it. The single-step x0 prediction's error is a
    per-timestep multiple of the epsilon (and the velocity) error, so this is the error of each area's mean colour
    in x0, in latent units, weighted per timestep as the denoising loss weighs x0: ControlNet++'s consistency
    feedback (arXiv 2404.07987) with the areas' colours as the condition read back. The plain loss weighs an area
    by its size; here a small area counts as much as the background.
    """
    batch, channels, height, width = prediction.shape
    if areas.shape[-2] % height or areas.shape[-1] % width:
        raise ValueError(f"areas of size {tuple(areas.shape[-2:])} are not a whole multiple of the latent size "
                         f"{(height, width)}")
    count = int(areas.max()) + 1
    if count == 1:
        return prediction.new_zeros((), dtype=torch.float32)
    rows = torch.arange(areas.shape[-2], device=areas.device) // (areas.shape[-2] // height)
    columns = torch.arange(areas.shape[-1], device=areas.device) // (areas.shape[-1] // width)
    cells = rows[:, None] * width + columns[None, :]  # HxW: each pixel's latent pixel
    index = (areas.long() * (height * width) + cells).flatten(1)
    shares = torch.zeros(batch, count * height * width, device=prediction.device)
    shares.scatter_add_(1, index.to(prediction.device), torch.ones_like(index, dtype=torch.float32,
                                                                        device=prediction.device))
    shares = shares.view(batch, count, height * width)[:, 1:]  # B x K x hw pixel counts, area 0 dropped
    sizes = shares.sum(-1)
    error = (prediction.float() - target.float()).flatten(2)
    means = torch.einsum("bkp,bcp->bkc", shares, error) / sizes.clamp(min=1)[..., None]
    present = (sizes > 0).float()
    per_sample = (means.pow(2).mean(-1) * present).sum(-1) / present.sum(-1).clamp(min=1)
    if sample_weights is not None:
        per_sample = per_sample * sample_weights
    return per_sample.mean()


def param_groups(model: torch.nn.Module, lr: float, new_parts_scale: float) -> list[dict]:
    """AdamW parameter groups: the parts copied from the UNet at ``lr``, the newly initialised parts
    (``NEW_PARTS``) at ``lr * new_parts_scale``. Each group records its ``lr_scale`` so that a new training
    phase can set fresh rates. A group with no trainable parameter is left out."""
    copied, new = [], []
    for name, parameter in model.named_parameters():
        if parameter.requires_grad:
            (new if name.startswith(NEW_PARTS) else copied).append(parameter)
    groups = [{"params": copied, "lr": lr, "lr_scale": 1.0, "name": "copied from the UNet"},
              {"params": new, "lr": lr * new_parts_scale, "lr_scale": new_parts_scale, "name": "newly initialised"}]
    return [group for group in groups if group["params"]]

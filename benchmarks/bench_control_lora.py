"""Control-LoRA (``model.control_lora``): file sizes at full size, and what a rank costs a trained model.

    python -m benchmarks.bench_control_lora                      # fp16 file sizes, SD 1.5- and SDXL-sized (CPU)
    python -m benchmarks.bench_control_lora --families sd15      # only SD 1.5 (SDXL needs about 10 GB of memory)
    python -m benchmarks.bench_control_lora --toy RUN            # a toy-world v2 run's trained models by rank

Sizes: a random 5-channel ControlNet of the family's shapes, written by ``model.save_checkpoint`` as the full ldm
file and as a control-LoRA at each ``--ranks`` (fp16, what a host downloads); the ratio is control-LoRA / full.
The size depends only on the shapes, so random weights give the real figure.

``--toy RUN`` (a ``python -m benchmarks.toyworld --world v2 --out RUN`` folder): its fill-trained ControlNet made
a control-LoRA at each rank on RUN/base, as ``python -m model.convert --layout control_lora`` does, and measured:
the relative error of the layers' differences and of the residuals on a random probe (``model.control_lora``), and
the toy world's region error (ΔE, clean strokes, ``--cases`` held-out drawings) against the full model's on the
same cases. The smallest rank within 1 ΔE of the full model is named.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

DEFAULT_RANKS = (32, 64, 128)
DEFAULT_TOY_RANKS = (4, 8, 16, 32, 64)


def full_size_controlnet(family: str):
    """A random 5-channel ControlNet with the shapes of ``family``'s (``sd15``: diffusers' defaults, SD 1.5's;
    ``sdxl``: SDXL's encoder with the ``text_time`` embedding)."""
    from diffusers import ControlNetModel

    from model.families import SDXL_UNET_CONFIG

    if family == "sd15":
        return ControlNetModel(conditioning_channels=5, cross_attention_dim=768)
    skip = ("sample_size", "in_channels", "out_channels", "up_block_types")
    return ControlNetModel(**{k: v for k, v in SDXL_UNET_CONFIG.items() if k not in skip}, conditioning_channels=5)


def sizes(family: str, ranks, folder: Path) -> dict:
    """{"full_mb": ..., "ranks": {rank: {"mb", "ratio", "trained_params_m"}}} of ``family``'s files in fp16 (one
    model in memory: each rank's low-rank layers are added, written and removed again)."""
    from torch.nn.utils import parametrize

    from model import save_checkpoint
    from model.control_lora import add_low_rank, low_rank_deltas

    controlnet = full_size_controlnet(family).eval()
    full = save_checkpoint(controlnet, folder / f"{family}_full.safetensors", layout="ldm", dtype="fp16")
    report = {"full_mb": full.stat().st_size / 1e6,
              "full_params_m": sum(p.numel() for p in controlnet.parameters()) / 1e6, "ranks": {}}
    full.unlink()
    for rank in ranks:
        add_low_rank(controlnet, rank)
        path = save_checkpoint(controlnet, folder / f"{family}_r{rank}.safetensors", layout="control_lora",
                               dtype="fp16")
        megabytes = path.stat().st_size / 1e6
        path.unlink()
        report["ranks"][rank] = {"mb": megabytes, "ratio": megabytes / report["full_mb"], "trained_params_m": sum(
            p.numel() for p in controlnet.parameters() if p.requires_grad) / 1e6}
        for name in low_rank_deltas(controlnet):
            parametrize.remove_parametrizations(controlnet.get_submodule(name), "weight", leave_parametrized=False)
        controlnet.requires_grad_(True)
    return report


def toy_ranks(run: Path, ranks, cases: int, steps: int) -> dict:
    """The toy run's fill-trained model against its control-LoRAs at ``ranks`` (see the module's docstring)."""
    from benchmarks.toyworld.evaluate import base_parts, load_exported
    from benchmarks.toyworld.stages import EXPORT_NAME
    from benchmarks.toyworld.v2 import held_out_v2
    from benchmarks.toyworld.v2_curve import scores
    from model.convert import to_control_lora

    parts = base_parts(run / "base")
    full = load_exported(run / "controlnet_fill" / f"{EXPORT_NAME}.safetensors")
    held_out = held_out_v2(cases, parts["unet"].config.sample_size * 8)

    def region_error(controlnet) -> float:
        return scores(parts, controlnet, held_out, steps)["region_error"]

    report = {"full_region_error": region_error(full), "cases": cases, "ranks": {}}
    for rank in ranks:
        approximation, errors = to_control_lora(full, parts["unet"], rank)
        errors["region_error"] = region_error(approximation)
        report["ranks"][rank] = errors
    within = [rank for rank, row in report["ranks"].items()
              if row["region_error"] - report["full_region_error"] <= 1.0]
    report["smallest_rank_within_1"] = min(within) if within else None
    return report


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_control_lora",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--families", default="sd15,sdxl", help="comma-separated: sd15, sdxl (sizes)")
    parser.add_argument("--ranks", default=None, help="comma-separated ranks (default 32,64,128; --toy 4,8,16,32,64)")
    parser.add_argument("--toy", type=Path, default=None, help="a toy-world v2 run folder: measure by rank instead")
    parser.add_argument("--cases", type=int, default=16, help="--toy: held-out drawings (default 16)")
    parser.add_argument("--steps", type=int, default=20, help="--toy: sampling steps (default 20, as the toy world)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    default = DEFAULT_TOY_RANKS if args.toy else DEFAULT_RANKS
    ranks = [int(r) for r in args.ranks.split(",")] if args.ranks else list(default)
    if args.toy:
        report = {"toy": str(args.toy), **toy_ranks(args.toy, ranks, args.cases, args.steps)}
        print(f"full model: region error {report['full_region_error']:.2f} ΔE ({args.cases} drawings, clean strokes)")
        print(f"{'rank':>6}{'weight err':>12}{'residual err':>14}{'region ΔE':>11}{'vs full':>9}")
        for rank, row in report["ranks"].items():
            print(f"{rank:>6}{row['weight_error']:>12.3f}{row['residual_error']:>14.3f}{row['region_error']:>11.2f}"
                  f"{row['region_error'] - report['full_region_error']:>+9.2f}")
        print(f"smallest rank within 1 ΔE of the full model: {report['smallest_rank_within_1']}")
    else:
        report = {}
        with tempfile.TemporaryDirectory() as tmp:
            for family in args.families.split(","):
                report[family] = sizes(family, ranks, Path(tmp))
                row = report[family]
                print(f"{family}: full ControlNet {row['full_mb']:.0f} MB fp16 ({row['full_params_m']:.0f} M "
                      "parameters)")
                for rank, entry in row["ranks"].items():
                    print(f"  control-LoRA rank {rank:>4}: {entry['mb']:7.0f} MB (x{entry['ratio']:.3f} of full; "
                          f"{entry['trained_params_m']:.0f} M trained parameters)")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())

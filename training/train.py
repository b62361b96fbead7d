"""Train a 5-channel Color Stroke + Canny ControlNet for SD 1.5 or SDXL (the base's family is detected).

    python training/train.py --demo --output_dir out/demo        # tiny built-in run on CPU (--demo sdxl: SDXL-shaped)
    python training/train.py --config my.yaml --output_dir out/run
    accelerate launch training/train.py --config my.yaml        # several GPUs / nodes
    python -m training.train --help                              # every option

The final ControlNet is OUTPUT_DIR/EXPORT_NAME.safetensors, ready for ComfyUI's models/controlnet/
or A1111/Forge's models/ControlNet/.
"""
from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    # Run as a script (python training/train.py): put the repository root on sys.path so that
    # `training`, `preprocessors` and `model` import as packages. The only sys.path change in training/.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    __package__ = "training"


def main(argv: list[str] | None = None) -> int:
    from training.config import ConfigError, parse_config

    try:
        config = parse_config(argv)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    from model import CheckpointError as ModelFileError
    from model import load_checkpoint
    from model.families import family_name
    from training.base_model import BaseModelError
    from training.checkpointing import CheckpointError
    from training.controlnet import checked_family
    from training.data import DataError
    from training.encoders import VaeOverflowError
    from training.loop import Trainer, TrainingError

    try:
        trainer = Trainer(config)
        result = trainer.run()
    except (ConfigError, BaseModelError, CheckpointError, DataError, ModelFileError, TrainingError,
            VaeOverflowError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if result.export_path is None:  # not the main process
        return 0
    print(f"\ntrained {result.step} steps; skipped samples: {result.skipped or 'none'}; "
          f"samples without a caption (trained on the empty prompt): {result.missing_captions}")
    if config.demo:
        model, metadata = load_checkpoint(result.export_path, family=checked_family(config, result.family),
                                          base_unet=trainer.base.unet)
        lora = f"a rank-{metadata['lora_rank']} control-LoRA on the base, " if metadata.get("lora_rank") else ""
        print(f"loaded the exported ControlNet back: {lora}{family_name(metadata['family'])}-shaped, "
              f"{sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters, "
              f"hint {metadata.get('hint_format')} v{metadata.get('hint_version')}")
    print(f"exported ControlNet: {result.export_path}")
    print(f"last checkpoint:     {result.checkpoint}")
    for entry in result.validation[-1:]:
        print(f"validation grid:     {entry['path']} (stroke colour error {entry['stroke_colour_error']:.1f}, "
              f"edge F1 {entry['edge_f1']:.3f})")
    print(f"logs:                {Path(config.output_dir) / 'logs'} (tensorboard --logdir ...)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

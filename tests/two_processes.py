"""A probe of a training run under several processes, for tests/test_train_processes.py:

    ACCELERATE_USE_CPU=true python -m torch.distributed.run --nproc_per_node 2 -m tests.two_processes OUT ARGS...

trains as ``training/train.py ARGS`` does and writes OUT/rank-N.json for each process N: how many processes the run
had (``processes``), the sample indices of each of its micro-batches (``indices``), its own loss of each
(``own_losses``), the loss each optimiser step reported (``step_losses``), and, from the main process,
OUT/trained.pt: the trained ControlNet's state.
"""
import json
import sys
from pathlib import Path

import torch

from training.config import parse_config
from training.loop import Trainer


def main() -> None:
    out, args = Path(sys.argv[1]), sys.argv[2:]
    seen = {"indices": [], "own_losses": []}
    own_loss = Trainer.loss

    def recorded_loss(self, batch):
        value = own_loss(self, batch)
        seen["indices"].append([int(i) for i in batch["index"]])
        seen["own_losses"].append(float(value.detach()))
        return value

    Trainer.loss = recorded_loss
    trainer = Trainer(parse_config(args))
    result = trainer.run()
    seen["step_losses"], seen["processes"] = result.losses, trainer.accelerator.num_processes
    (out / f"rank-{trainer.accelerator.process_index}.json").write_text(json.dumps(seen), encoding="utf-8")
    if trainer.accelerator.is_main_process:
        torch.save(trainer.accelerator.unwrap_model(trainer.controlnet).state_dict(), out / "trained.pt")


if __name__ == "__main__":
    main()

#!/usr/bin/env bash
# The GPU check, one script that fits in 9 minutes on one H200 and writes JSON under $OUT:
#   (a) bench_train --sd15 at batch 8, bf16, without and with gradient checkpointing: samples/s, peak memory and
#       the ratio against the diffusers-example-shaped reference step (random SD 1.5-shaped weights); the run with
#       checkpointing also times a rank-128 control-LoRA step against ours in full (--lora_rank 128);
#   (b) bench_train --sdxl at 1024 px, bf16 + gradient checkpointing, batch 1 and 4 (and 8-bit Adam where
#       bitsandbytes imports): the SDXL step's seconds and peak memory (random SDXL-sized weights, built once);
#   (c) the toy world at 256 px with the trainer's default recipe, for the ControlNet steps that fit.
#
#   bash benchmarks/device_run.sh            # on the GPU machine ($OUT set there)
#   OUT=/tmp/device bash benchmarks/device_run.sh --small   # the same script shrunk to a CPU smoke run
#
# The GPU machine has torch, accelerate, transformers, OpenCV and scikit-image but not diffusers or kornia: carry
# them as wheels in .whl/ (docs/benchmarks.md, "The GPU run"); they are installed to /tmp/site when present.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:?set OUT to the folder for the JSON results}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
if compgen -G ".whl/*.whl" >/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
PYTHON=${PYTHON:-python3}
WORK=$(mktemp -d)

if [[ "${1:-}" == "--small" ]]; then
    BENCH=(--steps 2)
    SDXL=(--family sdxl --steps 2)
    TOY=(--quick)
else
    BENCH=(--sd15 --batch_size 8 --mixed_precision bf16 --steps 10)
    SDXL=(--sdxl --mixed_precision bf16 --steps 5 --base_dir "$WORK/sdxl")
    TOY=(--image_size 256 --steps "${TOY_STEPS:-2000}")
fi

"$PYTHON" -m benchmarks.bench_train "${BENCH[@]}" --json "$OUT/bench_train.json"
"$PYTHON" -m benchmarks.bench_train "${BENCH[@]}" --gradient_checkpointing --lora_rank 128 \
    --json "$OUT/bench_train_checkpointing.json"
for batch in 1 4; do
    "$PYTHON" -m benchmarks.bench_train "${SDXL[@]}" --batch_size $batch --gradient_checkpointing \
        --json "$OUT/bench_train_sdxl_b$batch.json"
done
if "$PYTHON" -c "import bitsandbytes" 2>/dev/null; then
    "$PYTHON" -m benchmarks.bench_train "${SDXL[@]}" --batch_size 1 --gradient_checkpointing --use_8bit_adam \
        --json "$OUT/bench_train_sdxl_b1_8bit.json"
fi
"$PYTHON" -m benchmarks.toyworld "${TOY[@]}" --out "$WORK/toyworld" | tee "$OUT/toyworld.log"
cp "$WORK/toyworld/results.json" "$OUT/toyworld_results.json"
cp "$WORK/toyworld/grid.png" "$OUT/toyworld_grid.png"
echo "device run done: $(ls "$OUT")"

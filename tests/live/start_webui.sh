#!/usr/bin/env bash
# Start a WebUI set up by setup_webuis.sh on CPU, offline, in the background; wait until it is ready.
#
#   tests/live/start_webui.sh LIVE forge|a1111     -> Forge on :7861, A1111 on :7862; log LIVE/HOST/server.log
#   WEBUI_CKPT=random_sdxl WEBUI_FLAGS="--unet-in-bf16 --clip-in-fp16" tests/live/start_webui.sh LIVE forge
#                                                  -> on the SDXL checkpoint, in half precision (24 GB machines)
#
# Ready means the log has "Startup time:" and the API answers: Forge answers before it has set up its
# scripts' default arguments, and a generation sent then runs its always-on scripts without them.
set -euo pipefail
LIVE=$(cd "$1" && pwd)
HOST=$2
DIR=$LIVE/$HOST
cd "$DIR/webui"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 DIFFUSERS_OFFLINE=1
export CUDA_VISIBLE_DEVICES="" GRADIO_ANALYTICS_ENABLED=False PYTHONUNBUFFERED=1 OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
COMMON=(--skip-prepare-environment --skip-install --skip-version-check --skip-python-version-check
        --skip-torch-cuda-test --no-download-sd-model --do-not-download-clip --api
        --ckpt "$DIR/webui/models/Stable-diffusion/${WEBUI_CKPT:-random_sd15}.safetensors" ${WEBUI_FLAGS:-})
case $HOST in
  forge) PORT=7861; FLAGS=(--always-cpu --attention-pytorch --disable-safe-unpickle --skip-google-blockly) ;;
  a1111) PORT=7862; FLAGS=(--use-cpu all --precision full --no-half); export HF_HOME=$DIR/hf ;;
  *) echo "HOST is forge or a1111" >&2; exit 2 ;;
esac
nohup "$DIR/venv/bin/python" launch.py "${COMMON[@]}" "${FLAGS[@]}" --port $PORT > "$DIR/server.log" 2>&1 &
echo $! > "$DIR/server.pid"
for _ in $(seq 1 180); do
  if grep -q "^Startup time:" "$DIR/server.log" && curl -sf -o /dev/null "http://127.0.0.1:$PORT/sdapi/v1/sd-models"; then
    echo "http://127.0.0.1:$PORT (PID $(cat "$DIR/server.pid"), log $DIR/server.log)"
    exit 0
  fi
  kill -0 "$(cat "$DIR/server.pid")" 2>/dev/null || { echo "$HOST stopped: see $DIR/server.log" >&2; exit 1; }
  sleep 2
done
echo "$HOST not ready after 6 min: see $DIR/server.log" >&2
exit 1

#!/usr/bin/env bash
# The host integration tests (marked `host`) against the real ComfyUI, sd-webui-controlnet and Forge code of
# the snapshots in ../shared/hosts, in their own venv (.venv-hosts: torch 2.14.1 + torchvision, ComfyUI's
# requirements, sd-webui-controlnet's `ldm`). .ci/run calls it after the main tests. About 8 min on two cores.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${COMFYUI_DIR:-}${SD_WEBUI_CONTROLNET_DIR:-}${FORGE_DIR:-}" ]; then  # none given: the snapshots
  if [ ! -f ../shared/tools/host-snapshots.sh ]; then
    echo "tests/hosts.sh: no host checkouts: set COMFYUI_DIR, SD_WEBUI_CONTROLNET_DIR and/or FORGE_DIR, or keep" \
         "the project's ../shared/hosts snapshots beside this repository" >&2
    exit 2
  fi
  # shellcheck disable=SC1091
  source ../shared/tools/host-snapshots.sh >/dev/null
fi
python3 -m venv .venv-hosts
# ComfyUI's requirements without torch, torchvision (pinned by requirements-hosts.txt) and torchaudio (none
# is built for torch 2.14.1; ComfyUI only loses its audio nodes)
touch .venv-hosts/comfyui-requirements.txt
if [ -n "${COMFYUI_DIR:-}" ]; then
  grep -v -E '^torch(audio|vision)?([^a-z_-]|$)' "$COMFYUI_DIR/requirements.txt" > .venv-hosts/comfyui-requirements.txt
fi
.venv-hosts/bin/pip install -q -r requirements-hosts.txt -r .venv-hosts/comfyui-requirements.txt
# sd-webui-controlnet's model code imports `ldm` (A1111 ships it from Stability-AI's repository); its
# own requirements would pull a second torch
.venv-hosts/bin/pip install -q --no-deps stable-diffusion-sdkit==2.1.5
.venv-hosts/bin/python -m pytest -q -m host tests

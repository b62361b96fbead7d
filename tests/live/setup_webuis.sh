#!/usr/bin/env bash
# Set up Forge and A1111 v1.10.1 + sd-webui-controlnet on CPU, each in its own venv, with this repository
# linked in as an extension and the random models of make_models.py (see tests/live/README.md).
#
#   tests/live/setup_webuis.sh LIVE MIRRORS [forge|a1111 ...]
#
# LIVE: an empty folder outside the repository (about 25 GB). MIRRORS: a folder of git mirrors named
# owner+name/repo (as the search tool's fetch leaves them, or `git clone --mirror` elsewhere) of the
# repositories the WebUIs clone at launch: AUTOMATIC1111/stable-diffusion-webui (or any fork with tag
# v1.10.1), AUTOMATIC1111/stable-diffusion-webui-assets, Stability-AI/stablediffusion,
# Stability-AI/generative-models, crowsonkb/k-diffusion, salesforce/BLIP, openai/CLIP,
# lllyasviel/huggingface_guess. Forge and sd-webui-controlnet come from ../shared/hosts.
# Takes ~15 min per WebUI (pip); torch 2.14.1 + torchvision 0.29.1 come from this machine's disk.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
LIVE=$(mkdir -p "$1" && cd "$1" && pwd)
MIRRORS=$(cd "$2" && pwd)
shift 2
HOSTS=("${@:-forge a1111}")
# shellcheck disable=SC1091
source "$REPO/../shared/tools/host-snapshots.sh" "$LIVE/snapshots" >/dev/null  # (a sourced script sees our "$@")

mirror() {  # the git dir of owner+name in MIRRORS: MIRRORS/owner+name/repo (fetch) or MIRRORS/owner+name
  local dir
  for dir in "$MIRRORS/$1/repo" "$MIRRORS/$1"; do
    if git --git-dir="$dir" rev-parse -q --git-dir >/dev/null 2>&1; then echo "$dir"; return; fi
  done
  echo "no git mirror of $1 in $MIRRORS" >&2
  exit 1
}

export_tree() {  # export_tree MIRROR COMMIT DEST: the tree of COMMIT, skipping files the mirror lacks
  local git_dir=$1 commit=$2 dest=$3
  mkdir -p "$dest"
  git --git-dir="$git_dir" ls-tree -r --full-tree "$commit" | while read -r mode type sha path; do
    [ "$type" = blob ] || continue
    mkdir -p "$dest/$(dirname "$path")"
    if git --git-dir="$git_dir" cat-file -e "$sha" 2>/dev/null; then
      git --git-dir="$git_dir" cat-file blob "$sha" > "$dest/$path"
      if [ "$mode" = 100755 ]; then chmod +x "$dest/$path"; fi
    else
      echo "skipped (absent from the mirror): $dest/$path"
    fi
  done
}

constraints() {  # the pins every pip call of a WebUI takes (its requirements fight torch 2.14.1 otherwise)
  cat > "$1" <<'EOF'
torch==2.14.1
torchvision==0.29.1
numpy<2
setuptools>=77.0.3,<81
EOF
}

install_extension() {  # link this repository in, and the models in
  local webui=$1
  ln -sfn "$REPO" "$webui/extensions/color-stroke-controlnet"
  mkdir -p "$webui/models/ControlNet" "$webui/models/Stable-diffusion"
  ln -sf "$LIVE"/models/ControlNet/*.safetensors "$webui/models/ControlNet/"
  ln -sf "$LIVE/models/Stable-diffusion/random_sd15.safetensors" "$webui/models/Stable-diffusion/"
}

models() {
  [ -f "$LIVE/models/Stable-diffusion/random_sd15.safetensors" ] && return
  PYTHONPATH="$REPO:$COMFYUI_DIR" "$LIVE/$1/venv/bin/python" "$REPO/tests/live/make_models.py" "$LIVE/models"
}

setup_forge() {
  local dir=$LIVE/forge
  mkdir -p "$dir" && cp -a "$FORGE_DIR" "$dir/webui"
  export_tree "$(mirror lllyasviel+huggingface_guess)" 84826248b49bb7ca754c73293299c4d4e23a548d "$dir/webui/repositories/huggingface_guess"
  export_tree "$(mirror salesforce+BLIP)" 48211a1594f1321b00f14c9f7a5b4813144b2fb9 "$dir/webui/repositories/BLIP"
  export_tree "$(mirror AUTOMATIC1111+stable-diffusion-webui-assets)" 6f7db241d2f8ba7457bac5ca9753331f0c266917 \
    "$dir/webui/repositories/stable-diffusion-webui-assets"
  constraints "$dir/constraints.txt"
  echo "protobuf<4" >> "$dir/constraints.txt"  # open-clip-torch's pin; onnxruntime would pull protobuf 7
  python3 -m venv "$dir/venv"
  local pip=("$dir/venv/bin/pip" install -q -c "$dir/constraints.txt")
  "${pip[@]}" torch==2.14.1 torchvision==0.29.1
  grep -v -E "^setuptools|^torch$" "$dir/webui/requirements_versions.txt" > "$dir/requirements.txt"
  "${pip[@]}" -r "$dir/requirements.txt" joblib fvcore mediapipe onnxruntime svglib diffusers
  models forge
  install_extension "$dir/webui"
}

setup_a1111() {
  local dir=$LIVE/a1111 webui_git
  mkdir -p "$dir/webui/repositories"
  webui_git=""
  for git_dir in "$MIRRORS"/*+stable-diffusion-webui/repo "$MIRRORS"/*+stable-diffusion-webui; do
    if git --git-dir="$git_dir" rev-parse -q --verify v1.10.1 >/dev/null 2>&1; then webui_git=$git_dir; break; fi
  done
  [ -n "$webui_git" ] || { echo "no mirror in $MIRRORS has the tag v1.10.1" >&2; exit 1; }
  export_tree "$webui_git" v1.10.1 "$dir/webui"
  export_tree "$(mirror AUTOMATIC1111+stable-diffusion-webui-assets)" 6f7db241d2f8ba7457bac5ca9753331f0c266917 \
    "$dir/webui/repositories/stable-diffusion-webui-assets"
  export_tree "$(mirror Stability-AI+stablediffusion)" cf1d67a6fd5ea1aa600c4df58e5b47da45f6bdbf \
    "$dir/webui/repositories/stable-diffusion-stability-ai"
  export_tree "$(mirror Stability-AI+generative-models)" 45c443b316737a4ab6e40413d7794a7f5657c19f \
    "$dir/webui/repositories/generative-models"
  export_tree "$(mirror crowsonkb+k-diffusion)" ab527a9a6d347f364e3d185ba6d714e22d80cb3c "$dir/webui/repositories/k-diffusion"
  export_tree "$(mirror salesforce+BLIP)" 48211a1594f1321b00f14c9f7a5b4813144b2fb9 "$dir/webui/repositories/BLIP"
  export_tree "$(mirror openai+CLIP)" d50d76daa670286dd6cacf3bcd80b5e4823fc8e1 "$dir/CLIP"
  cp -a "$SD_WEBUI_CONTROLNET_DIR" "$dir/webui/extensions/sd-webui-controlnet"
  constraints "$dir/constraints.txt"
  python3 -m venv "$dir/venv"
  local pip=("$dir/venv/bin/pip" install -q -c "$dir/constraints.txt")
  "${pip[@]}" torch==2.14.1 torchvision==0.29.1
  grep -v -E "^setuptools|^torch$" "$dir/webui/requirements_versions.txt" > "$dir/requirements.txt"
  "${pip[@]}" -r "$dir/requirements.txt"
  "${pip[@]}" --no-build-isolation "$dir/CLIP"  # k-diffusion imports `clip`, which launch would install from GitHub
  # its annotators need mp.solutions (gone from mediapipe 0.10.30 on), onnxruntime needs protobuf >= 4.25.8:
  # pip then warns that open-clip-torch wants protobuf < 4, as on a usual A1111 + sd-webui-controlnet
  "${pip[@]}" -r "$dir/webui/extensions/sd-webui-controlnet/requirements.txt" onnxruntime mediapipe==0.10.21 \
    protobuf==4.25.8
  # A1111 reads the CLIP tokenizer from the Hugging Face cache: SD 1.5's, shipped with Forge, offline
  local cache=$dir/hf/hub/models--openai--clip-vit-large-patch14 snapshot=0000000000000000000000000000000000000001
  local sd15=$FORGE_DIR/backend/huggingface/runwayml/stable-diffusion-v1-5
  mkdir -p "$cache/snapshots/$snapshot" "$cache/refs"
  cp "$sd15"/tokenizer/{vocab.json,merges.txt,tokenizer_config.json,special_tokens_map.json} "$cache/snapshots/$snapshot/"
  cp "$sd15/text_encoder/config.json" "$cache/snapshots/$snapshot/config.json"
  printf %s "$snapshot" > "$cache/refs/main"
  models a1111
  install_extension "$dir/webui"
}

for host in ${HOSTS[*]}; do
  "setup_$host"
done
echo "set up in $LIVE: start with tests/live/start_webui.sh $LIVE forge|a1111"

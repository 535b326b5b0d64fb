#!/usr/bin/env bash
# Run on the development machine before the GPU call of bench/gpu_suite.py: what the GPU image lacks goes
# into folders that git ignores (/.whl/, /.device/ in .gitignore), for the call to carry:
#   .whl/             diffusers and importlib_metadata wheels for the image's Python 3.12 (the image has
#                     torch, accelerate, huggingface_hub, safetensors and the rest of our dependencies)
#   .device/data/     the first 30 images of bsds500/train (what bench/train_rate.py trains on; Kodak is not carried)
#   .device/weights/  taef2/ (the shipped TAEF2 weights)
#   with --with-kodak also .device/data/kodak (only for a call that runs experiments/kodak.py)
# The device call then carries [".whl", ".device"] (about 14 MiB, 29 with --with-kodak, beside the tracked files,
# 20 MB on 2026-12-04; the call's limit is 64 MiB in all).
set -euo pipefail
cd "$(dirname "$0")/.."
kodak=0
for arg in "$@"; do
  case "$arg" in
    --with-kodak) kodak=1 ;;
    *) echo "gpu_prepare: unknown argument $arg (expected --with-kodak)" >&2; exit 2 ;;
  esac
done
shared=${JSCGC_SHARED:-../shared}
[ -d "$shared/data/bsds500/train" ] || { echo "gpu_prepare: no $shared/data/bsds500/train (set JSCGC_SHARED)" >&2; exit 2; }
[ -d "$shared/weights/taef2" ] || { echo "gpu_prepare: no $shared/weights/taef2 (set JSCGC_SHARED)" >&2; exit 2; }
rm -rf .whl .device
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 -d .whl \
  "diffusers==$(python3 -c 'import diffusers; print(diffusers.__version__)')" importlib_metadata==8.7.0
mkdir -p .device/data/bsds500 .device/weights
# only the first 30 train images (sorted by name), as in the first lease: the call's working tree may be 64 MiB in
# all; train_rate.py measures time per step, which does not depend on how many images it crops from
mkdir -p .device/data/bsds500/train
find "$shared/data/bsds500/train" -maxdepth 1 -type f | sort | head -n 30 | xargs -I{} cp {} .device/data/bsds500/train/
cp -r "$shared/weights/taef2" .device/weights/
if [ "$kodak" = 1 ]; then cp -r "$shared/data/kodak" .device/data/; fi
du -sh .whl .device

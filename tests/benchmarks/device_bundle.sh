#!/usr/bin/env bash
# Build .device/site.tar.xz: Ray 2.60.0 + the emulator's pure/compiled deps for CPython 3.12
# x86_64 manylinux (the device's python3 is 3.12.3), pruned and stripped so the archive stays
# small enough to travel (the unpacked site is ~110 MiB, over the 64 MiB travel limit).
# numpy / scipy / scikit-learn are NOT bundled: the device image has them (KINDS.md).
# Usage (here): bash tests/benchmarks/device_bundle.sh; then carry .device to the device and
# run tests/benchmarks/device_scaling.sh there. Add /.device/ to .git/info/exclude.
set -euo pipefail
OUTDIR="$(cd "$(dirname "$0")/../.." && pwd)/.device"
mkdir -p "$OUTDIR"
PY12=${PY12:-/root/.pyenv/versions/3.12.1/bin/python3.12}
WHL=${WHL:-/tmp/pipesdfa-whl312}
STAGE=${STAGE:-/tmp/pipesdfa-stage}
PRUNE_LIBS=${PRUNE_LIBS:-1}
mkdir -p "$WHL"
python -m pip download -q --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
  --platform manylinux_2_5_x86_64 --platform manylinux1_x86_64 -d "$WHL" \
  ray==2.60.0 pydantic==2.13.4 pydantic-core==2.46.4 annotated-types typing-inspection \
  jsonschema==4.26.0 attrs jsonschema-specifications referencing rpds-py msgpack PyYAML \
  click filelock protobuf requests packaging
rm -rf "$STAGE" && mkdir -p "$STAGE"
"$PY12" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$STAGE/site" "$WHL"/*.whl
cd "$STAGE/site"
rm -rf bin ray/jars ray/dashboard/client/build
if [ "$PRUNE_LIBS" = 1 ]; then  # Ray libraries the core (actors, tasks) never imports
  rm -rf ray/rllib ray/tune ray/train ray/serve ray/data ray/llm
fi
find . -name '__pycache__' -prune -exec rm -rf {} +
for f in ray/_raylet.so ray/core/src/ray/raylet/raylet ray/core/src/ray/gcs/gcs_server; do
  strip --strip-unneeded "$f"
done
cd "$STAGE"
tar -cf - site | xz -9e -T0 > "$OUTDIR/site.tar.xz"
du -sh "$STAGE/site" "$OUTDIR/site.tar.xz"

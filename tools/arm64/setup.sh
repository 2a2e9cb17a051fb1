#!/usr/bin/env bash
# Sets up an emulated arm64 (Cortex-A76) Python with the aarch64 build of
# ai-edge-litert, to run .tflite files as a phone or Raspberry Pi-class board
# would. Needs root for apt-get; takes under a minute. See docs/stack.md.
#
#   bash tools/arm64/setup.sh [ROOT]        # default ROOT: ~/.cache/keras_superattn/arm64
#   export KERAS_SUPERATTN_ARM64_ROOT=ROOT  # then the arm64 tests run
set -euo pipefail
ROOT="${1:-${KERAS_SUPERATTN_ARM64_ROOT:-$HOME/.cache/keras_superattn/arm64}}"
SITE="$ROOT/opt/site-packages"

if ! command -v qemu-aarch64-static >/dev/null || ! command -v mmdebstrap >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-user-static mmdebstrap >/dev/null
fi

if [ ! -x "$ROOT/usr/bin/python3.11" ]; then
    rm -rf "$ROOT"
    mkdir -p "$(dirname "$ROOT")"
    # binfmt_misc is not mounted on these machines: extract only, no second stage.
    mmdebstrap --quiet --variant=extract --arch=arm64 \
        --include=python3,python3-minimal,libpython3.11-stdlib,libstdc++6,libgcc-s1,zlib1g \
        bookworm "$ROOT"
fi

# Without a /proc/cpuinfo that looks like an ARM CPU, LiteRT's cpuinfo
# initialisation segfaults under qemu; qemu's -L redirects /proc/cpuinfo here.
mkdir -p "$ROOT/proc"
: > "$ROOT/proc/cpuinfo"
for cpu in 0 1; do
    cat >> "$ROOT/proc/cpuinfo" <<CPU
processor	: $cpu
BogoMIPS	: 108.00
Features	: fp asimd evtstrm crc32 cpuid
CPU implementer	: 0x41
CPU architecture: 8
CPU variant	: 0x0
CPU part	: 0xd08
CPU revision	: 3

CPU
done

if [ ! -d "$SITE/ai_edge_litert" ]; then
    python3 -m pip install --quiet --target "$SITE" --only-binary=:all: --implementation cp \
        --python-version 3.11 --platform manylinux_2_27_aarch64 --platform manylinux2014_aarch64 \
        "ai-edge-litert>=2.3,<2.4"
fi
echo "arm64 emulation ready: export KERAS_SUPERATTN_ARM64_ROOT=$ROOT"

#!/usr/bin/env bash
# Instruction counts per detector update (and per whole sample) on the Cortex-M4F, in QEMU.
# Deterministic: the same build prints the same numbers on every run.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p zscope-firmware --bin zscope-firmware-bench \
  --target thumbv7em-none-eabihf
timeout 300 qemu-system-arm -M netduinoplus2 -nographic -monitor none -icount shift=0 \
  -semihosting-config enable=on,target=native -serial null -serial null \
  -kernel target/thumbv7em-none-eabihf/release/zscope-firmware-bench

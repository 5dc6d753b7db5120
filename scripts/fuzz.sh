#!/usr/bin/env bash
# `make fuzz`: runs the parser fuzzer (fuzz/fuzz_targets/parse.rs) with
# cargo-fuzz for N seconds (default 60). libFuzzer needs nightly-only
# compiler flags; the stable toolchain accepts them with RUSTC_BOOTSTRAP=1
# (as the kernel build does). Not part of `make test`.
set -euo pipefail
SECS=${1:-60}
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz" >&2
    cargo install --locked -q cargo-fuzz
fi
cd fuzz
RUSTC_BOOTSTRAP=1 cargo fuzz run parse -- -max_total_time="$SECS" -max_len=4096 2>&1 \
    | grep -E "^#[0-9]+.*(DONE|pulse)|Done [0-9]+ runs|ERROR|panicked|SUMMARY" || true
test "${PIPESTATUS[0]}" = 0

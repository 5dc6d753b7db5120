#!/usr/bin/env bash
# make coverage: which of the module's basic blocks the QEMU suite and,
# separately, the kernel fuzzer execute.
#
# Boots the test kernel with QEMU's translation log on for the module area
# (`-d in_asm -dfilter`, as `make bench-profile` does) and runs (1) the guest
# suite that `make test` runs, less the tests that load another module at
# the same addresses (the bench smoke test and the failed-load test load the
# C reference module, kunit_suites_pass the KUnit module), and (2) the
# fuzzer alone. Then
# scripts/coverage.py maps the logged instructions to the module's basic
# blocks and writes build/coverage/{suite,fuzz}.txt (per-function table,
# every block never executed with its reason) and coverage.json.
# Target: COVERAGE_MIN (default 90) % of the blocks for the suite, and a
# reason (tests/coverage/reasons.txt, or a trap the compiler inserted) for
# every block left out.
# Environment: KBUILD, KO, BINDIR (the Makefile sets them).
set -euo pipefail
HERE=$(cd "$(dirname "$0")/.." && pwd)
OUT=$HERE/build/coverage
: "${KBUILD:?}" "${KO:?}" "${BINDIR:?}"
MODULE_AREA=0xffffffffa0000000..0xffffffffff000000
mkdir -p "$OUT"
run() {  # name, guest args
    local name=$1 args=$2 dir=$OUT/vm-$1
    rm -rf "$dir"; mkdir -p "$dir"
    printf 'coverage: %s run (guest args: %s)\n' "$name" "$args" >&2
    KBUILD=$KBUILD KO=$KO BINDIR=$BINDIR OUT=$dir RUSTNL_ACCEL=tcg \
        QEMU_EXTRA="-d in_asm -dfilter $MODULE_AREA -D $dir/qemu.log" \
        GUEST_ARGS="$args" VM_TIMEOUT=${VM_TIMEOUT:-3600} \
        bash "$HERE/scripts/vm.sh" test > "$dir/vm.txt" 2>&1 \
        || { tail -n 30 "$dir/vm.txt" >&2; echo "coverage: the $name run failed: $dir/vm.txt" >&2; exit 1; }
    grep '^test result' "$dir/vm.txt" | head -n1 >&2
}
# Left out: the tests that load another module (the C reference, the KUnit
# module) in the module area, whose code the log would mix with rustnl's.
run suite "--skip bench_smoke,failed_load,kunit_suites"
run fuzz "hardening_fuzz"
python3 "$HERE/scripts/coverage.py" --ko "$KO" --reasons "$HERE/tests/coverage/reasons.txt" \
    --out "$OUT" --min "suite=${COVERAGE_MIN:-90}" \
    "suite=$OUT/vm-suite/qemu.log:$OUT/vm-suite/console-test.log" \
    "fuzz=$OUT/vm-fuzz/qemu.log:$OUT/vm-fuzz/console-test.log"

#!/usr/bin/env bash
# make test: the host checks, the debug-kernel VM, then the stock suite on
# each of Debian's Rust kernel lines given (TEST_STOCK_LINES).
#
# Usage: scripts/test.sh LINE...   (e.g. trixie-backports sid)
#
# A line's first run needs its packages (and for sid/forky a debootstrapped
# chroot with the kernel's toolchain): minutes of downloads and unpacking,
# little CPU. They are fetched in the background (`stock.sh fetch`, one line
# after the other) while the test kernel, the tools and the debug VM keep
# both cores busy; the CPU-heavy part of a line (its Rust metadata) comes
# after the debug VM, under the machine's CPU lock. Warm runs find
# everything fetched and the background job ends at once.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
rustnl_script test
[ $# -gt 0 ] || die "usage: test.sh LINE... (trixie-backports, sid, forky)"
for l in "$@"; do
    case $l in trixie-backports|sid|forky) ;; *) die "TEST_STOCK_LINES: $l is not a Debian kernel line (trixie-backports, sid, forky)" ;; esac
done
cd "$HERE"
mkdir -p build
fetch_log=build/stock-fetch.log
# Its own process group (setsid), so that a failure here stops it whole.
setsid bash -c 'for l; do echo "== fetch STOCK=$l"; STOCK=$l bash scripts/stock.sh fetch || exit 1; done' \
    fetch "$@" >"$fetch_log" 2>&1 &
fetch=$!
trap 'kill -- -"$fetch" 2>/dev/null || true' EXIT
t0=$SECONDS
make --no-print-directory test-host
make --no-print-directory test-vm
log "host checks and the debug-kernel VM: $((SECONDS - t0)) s; waiting for the stock kernels' packages ($fetch_log)"
wait "$fetch" || die "fetching a stock kernel failed: $(grep -m1 '^stock: error:' "$fetch_log" || tail -n1 "$fetch_log") (see $fetch_log)"
trap - EXIT
for l in "$@"; do
    t1=$SECONDS
    echo "== stock-test STOCK=$l"
    make --no-print-directory stock-test STOCK="$l"
    log "stock-test STOCK=$l: $((SECONDS - t1)) s"
done
log "make test: $((SECONDS - t0)) s after make deps"

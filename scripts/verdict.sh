#!/usr/bin/env bash
# Judges a guest console log: scripts/verdict.sh LOG [QEMU_STATUS] [TIMEOUT]
# Fails (exit 1) when the guest did not report RUSTNL-EXIT=0, when any kernel
# line shows a splat (KASAN, lockdep, WARN, BUG, Oops, panic, RCU stall,
# hung task, kmemleak), when a KUnit case reports `not ok`, or when the
# kmemleak dump lists an object.
# Prints one summary line: guest_exit=… splats=… kmemleak=…
set -uo pipefail
LOG=$1 QEMU_STATUS=${2:-?} TIMEOUT=${3:-?}
say() { printf 'vm: %s\n' "$*" >&2; }

SPLAT_RE='BUG:|KASAN|WARNING:|Oops|general protection fault|kernel BUG|Kernel panic|Call Trace:|possible circular locking|possible recursive locking|inconsistent lock state|DEBUG_LOCKS_WARN_ON|suspicious RCU usage|blocked for more than|rcu_.*stall|suspected memory leak|UBSAN|memory leak detector disabled|Cannot allocate a kmemleak'

status=$(sed -n 's/^RUSTNL-EXIT=\([0-9]*\).*/\1/p' "$LOG" | tail -n1)
# Kernel lines only ("[    1.234567] ..."), so user programs' output cannot
# trip the scan.
splats=$(grep -aE '^\[ *[0-9]+\.[0-9]+\]' "$LOG" | grep -aE "$SPLAT_RE")
nsplat=$(printf '%s' "$splats" | grep -c .)
# KUnit cases (the module's suites run at every insmod) report in KTAP.
kunit_fail=$(grep -aE '^\[ *[0-9]+\.[0-9]+\] +not ok ' "$LOG")
nkunit=$(printf '%s' "$kunit_fail" | grep -c .)
kmem=$(sed -n '/^RUSTNL-KMEMLEAK-BEGIN/,/^RUSTNL-KMEMLEAK-END/p' "$LOG")
leaks=$(printf '%s\n' "$kmem" | grep -c 'unreferenced object')

fail=0
if [ -z "$status" ]; then
    say "FAIL: the guest did not finish (timeout after ${TIMEOUT}s, hang or crash; qemu status $QEMU_STATUS)"
    fail=1
elif [ "$status" != 0 ]; then
    say "FAIL: guest exit status $status"
    fail=1
fi
if [ "$nsplat" != 0 ]; then
    say "FAIL: $nsplat kernel splat line(s) in the console log:"
    printf '%s\n' "$splats" | head -n 40 >&2
    fail=1
fi
if [ "$nkunit" != 0 ]; then
    say "FAIL: $nkunit failed KUnit case line(s):"
    printf '%s\n' "$kunit_fail" | head -n 20 >&2
    fail=1
fi
if [ "$leaks" != 0 ]; then
    say "FAIL: kmemleak reported $leaks unreferenced object(s):"
    printf '%s\n' "$kmem" | head -n 60 >&2
    fail=1
fi
if grep -q '^RUSTNL-KMEMLEAK: unavailable' "$LOG"; then
    say "FAIL: kmemleak is not available in the guest"
    fail=1
fi
say "guest_exit=${status:-none} splats=$nsplat kunit_failures=$nkunit kmemleak=$leaks"
printf 'guest_exit=%s splats=%s kunit_failures=%s kmemleak=%s\n' "${status:-none}" "$nsplat" "$nkunit" "$leaks" > "$LOG.verdict"
exit $fail

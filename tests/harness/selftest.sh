#!/usr/bin/env bash
# Self-test of the QEMU verdict: a clean log passes; a log with each kind of
# kernel splat, a kmemleak report, a failing or missing exit status fails.
set -uo pipefail
HERE=$(cd "$(dirname "$0")/../.." && pwd)
V="$HERE/scripts/verdict.sh"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0

clean() {
    cat <<'LOG'
[    0.000000] Linux version 7.3.4
[    0.000000] KernelAddressSanitizer initialized (generic)
[    9.388484] kmemleak: Automatic memory scanning thread started
test guest::echo ... ok
WARNING: this user-space line must not count
RUSTNL-KMEMLEAK-BEGIN
RUSTNL-KMEMLEAK-END
RUSTNL-EXIT=0
LOG
}

check() {  # name expected-exit log-content
    printf '%s\n' "$3" > "$tmp/log"
    bash "$V" "$tmp/log" 0 60 2>/dev/null
    local got=$?
    if [ "$got" = "$2" ]; then
        pass=$((pass + 1)); echo "test harness::$1 ... ok"
    else
        fail=$((fail + 1)); echo "test harness::$1 ... FAILED (exit $got, wanted $2)"
    fi
}

base=$(clean)
check clean_log_passes 0 "$base"
check missing_exit_fails 1 "$(printf '%s\n' "$base" | grep -v RUSTNL-EXIT)"
check nonzero_exit_fails 1 "$(printf '%s\n' "$base" | sed 's/RUSTNL-EXIT=0/RUSTNL-EXIT=3/')"
for s in \
    "BUG: KASAN: slab-out-of-bounds in rustnl_input+0x10/0x20" \
    "WARNING: CPU: 0 PID: 1 at net/netlink/af_netlink.c:100 foo+0x1/0x2" \
    "WARNING: possible circular locking dependency detected" \
    "Oops: general protection fault, probably for non-canonical address" \
    "kernel BUG at mm/slub.c:100!" \
    "BUG: sleeping function called from invalid context at mm/slab.h:1" \
    "kmemleak: 2 new suspected memory leaks (see /sys/kernel/debug/kmemleak)" \
    "INFO: task rustnl:77 blocked for more than 120 seconds." \
    "kmemleak: Kernel memory leak detector disabled" ; do
    name=$(printf '%s' "$s" | tr -c 'a-zA-Z0-9\n' '_' | cut -c1-40)
    check "splat_${name}_fails" 1 "$(printf '%s\n' "$base" | sed "2a [   12.000000] $s")"
done
check kunit_failure_fails 1 "$(printf '%s\n' "$base" | sed '2a [   11.000000]     not ok 3 rustnl_case')"
check kunit_pass_passes 0 "$(printf '%s\n' "$base" | sed '2a [   11.000000]     ok 3 rustnl_case')"
check kmemleak_object_fails 1 "$(printf '%s\n' "$base" | sed '/RUSTNL-KMEMLEAK-BEGIN/a unreferenced object 0xffff888003 (size 64):')"
check kmemleak_unavailable_fails 1 "$(printf '%s\n' "$base" | sed 's/RUSTNL-KMEMLEAK-BEGIN/RUSTNL-KMEMLEAK: unavailable/')"
# A kernel built without kmemleak (the bench kernel) says so and passes.
check kmemleak_off_on_bench_kernel_passes 0 "$(printf '%s\n' "$base" | sed '/RUSTNL-KMEMLEAK-BEGIN/,/RUSTNL-KMEMLEAK-END/c RUSTNL-KMEMLEAK: off (a kernel built without kmemleak)')"
rm -f "$tmp"/log.verdict

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]

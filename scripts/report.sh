#!/usr/bin/env bash
# Prints the hardening report of a guest run as a table and writes it as JSON.
#
# Usage: scripts/report.sh LOG ACCEL SECONDS JSON_OUT
#   LOG       console log with the guest's `RUSTNL-REPORT key value` lines
#             (and LOG.verdict, written by scripts/verdict.sh)
#   ACCEL     kvm | tcg, SECONDS: the whole VM run, JSON_OUT: where to write
set -euo pipefail
LOG=$1 ACCEL=$2 SECS=$3 JSON=$4
declare -A R
while read -r _ key value; do
    R[$key]=$value
done < <(grep -a '^RUSTNL-REPORT ' "$LOG")
verdict=$(cat "$LOG.verdict" 2>/dev/null || echo "splats=? kmemleak=?")
splats=$(sed -n 's/.*splats=\([0-9?]*\).*/\1/p' <<<"$verdict")
leaks=$(sed -n 's/.*kmemleak=\([0-9?]*\).*/\1/p' <<<"$verdict")
v() { printf '%s' "${R[$1]:--}"; }
sum() { local t=0 k; for k in "$@"; do t=$(( t + ${R[$k]:-0} )); done; printf '%s' "$t"; }

rows=()
row() { rows+=("$1"$'\t'"$2"$'\t'"$3"); }
row "machine mode" "$ACCEL" "whole VM run ${SECS} s"
[ -n "${R[fuzz.messages]:-}" ] && {
    row "messages fuzzed" "$(v fuzz.messages)" "$(v fuzz.datagrams) datagrams, seed $(v fuzz.seed), $(v hardening_fuzz_kernel_input.seconds) s"
    row "replies checked byte for byte" "$(v fuzz.replies_checked)" "every answer predicted by the shared model"
}
row "kernel splats (must be 0)" "$splats" "KASAN, lockdep, WARN, BUG, RCU, hung task"
row "kmemleak reports (must be 0)" "$leaks" "two scans at the end of the run"
[ -n "${R[load.echo.answered]:-}" ] && {
    row "echo load answered" "$(v load.echo.answered)" "$(v load.echo.clients) clients x $(v load.echo.per_client), $(v load.echo.per_second)/s, $(v hardening_load_echo.seconds) s"
    row "echo load lost/dup/mismatched" "$(v load.echo.lost)/$(v load.echo.duplicated)/$(v load.echo.mismatched)" "must be 0/0/0"
}
[ -n "${R[load.broadcast.broadcasts]:-}" ] && {
    row "broadcasts x listeners" "$(v load.broadcast.broadcasts) x $(v load.broadcast.listeners)" "$(v load.broadcast.fast_deliveries) fast deliveries, all in order, $(v hardening_load_broadcast_one_slow_listener.seconds) s"
    row "ENOBUFS seen (slow listener)" "$(v load.broadcast.slow_enobufs)" "slow got $(v load.broadcast.slow_received), $(v load.broadcast.delivery_failures) failed deliveries reported to the sender"
}
[ -n "${R[unload.cycles]:-}" ] && {
    row "unload cycles survived" "$(v unload.cycles)" "$(v unload.echoes_ok) echoes, $(v unload.listener_joins) listener joins; clean errors: $(v unload.rmmod_refused_in_use) rmmod refused (in use), $(v unload.eprotonosupport) EPROTONOSUPPORT, $(v unload.eagain_starting) EAGAIN; $(v hardening_unload_under_load.seconds) s"
}
if [ -n "${R[faults.input.requests]:-}${R[faults.worker.requests]:-}${R[faults.insmod.attempts]:-}" ]; then
    hits=$(sum faults.input.injected_failslab faults.input.injected_fail_page_alloc \
               faults.worker.injected_failslab faults.worker.injected_fail_page_alloc \
               faults.insmod.injected_failslab faults.insmod.injected_fail_page_alloc)
    row "injected allocation failures hit" "$hits" "input path $(sum faults.input.injected_failslab faults.input.injected_fail_page_alloc), worker/broadcast $(sum faults.worker.injected_failslab faults.worker.injected_fail_page_alloc), insmod $(sum faults.insmod.injected_failslab faults.insmod.injected_fail_page_alloc)"
    row "  ... turned into ENOMEM replies" "$(sum faults.input.enomem_errors faults.worker.enomem_errors)" "and $(sum faults.input.overruns_counted faults.worker.overruns_counted) counted overruns (ENOBUFS), $(sum faults.input.send_failed faults.worker.send_failed) failed sends"
    row "  ... insmod attempts" "$(v faults.insmod.attempts)" "$(v faults.insmod.loaded) loaded, $(v faults.insmod.failed_cleanly) failed cleanly ($(v faults.insmod.errnos)), nothing left behind"
fi

printf '\n%-34s %-16s %s\n' "hardening report" "value" "detail"
printf '%-34s %-16s %s\n' "----------------" "-----" "------"
for r in "${rows[@]}"; do
    IFS=$'\t' read -r a b c <<<"$r"
    printf '%-34s %-16s %s\n' "$a" "$b" "$c"
done
echo

{
    printf '{"accel":"%s","vm_seconds":%s,"splats":"%s","kmemleak":"%s","figures":{' "$ACCEL" "$SECS" "$splats" "$leaks"
    first=1
    for k in $(printf '%s\n' "${!R[@]}" | sort); do
        [ $first = 1 ] || printf ','
        first=0
        printf '"%s":"%s"' "$k" "${R[$k]}"
    done
    printf '}}\n'
} > "$JSON"
echo "report: $JSON"

#!/usr/bin/env bash
# rustnl QEMU harness: builds an initramfs and boots the test kernel.
#
# Usage: scripts/vm.sh MODE        MODE: test | demo | run | shell
#        scripts/vm.sh cmd FILE    write $CMD to FILE as the guest will run it
# Environment (the Makefile sets these):
#   KBUILD        kernel build dir (arch/x86/boot/bzImage, usr/gen_init_cpio)
#   KERNEL_IMAGE, GEN_CPIO   the kernel image and the initramfs writer, when
#                 not from KBUILD (make KERNEL=stock: Debian's vmlinuz)
#   KERNEL_NAME   what the log calls the kernel (default: the test kernel)
#   KO            the module to put at /lib/modules/rustnl.ko
#   BINDIR        dir with static rustnl and rustnl-guest-tests binaries
#   OUT           where the initramfs and console log go
#   CMD           (run) the command line to run in the guest, as a shell
#                 script: byte for byte what the guest's sh reads
#   GUEST_ARGS    (test) arguments for rustnl-guest-tests (scale, seed, filter)
#   VM_FILES      extra host files copied into the guest's /
#   RUSTNL_ACCEL  auto (default) | kvm | tcg
#   VM_TIMEOUT    seconds before the guest is killed (default 1200)
#   QEMU_EXTRA    extra QEMU arguments (make bench: -icount shift=0)
#   KMEMLEAK      required (default) | off (a kernel without kmemleak: bench)
# The host's / is always exported read-only to the guest (virtio 9p, tag
# hostroot); tests/vm/init mounts it at /host with the guest's own /proc,
# /sys, /dev, /tmp, /run and /lib/modules, for `chroot /host CMD`. The guest
# also gets /etc/rustnl/host.env (where the kernel source and this checkout
# are on the host), the generic netlink spec at /etc/rustnl/rustnl.yaml and
# the docs' `make vm-run` examples at /etc/rustnl/examples (NUL-separated).
# Output (run, demo): the guest runs the command with its stdout and stderr
# on a second serial port (ttyS1), which QEMU writes to this script's stdout
# unchanged; the kernel's console (ttyS0) goes to $OUT/console-MODE.log only.
# The command's output is also kept in $OUT/output-MODE.log. VM_VERBOSE=1
# prints the console log after the run. (test: the console is the output.)
# Exit status: the guest's (test/run/demo), non-zero on a timeout, a crash,
# or any kernel splat (KASAN, lockdep, WARN, BUG, Oops, kmemleak report).
set -euo pipefail
MODE=${1:?usage: vm.sh test|demo|run|shell, or vm.sh cmd FILE}
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
rustnl_script vm

# The guest's /etc/rustnl/cmd: $CMD byte for byte (quotes, `$`, newlines,
# any byte but NUL), and a final newline so that its last line is complete.
# make vm-run passes CMD through the environment unexpanded
# (tests/harness/selftest.sh checks both steps).
write_cmd() {  # file
    [ -n "${CMD:-}" ] || { echo "vm-run: give the command line as CMD='...' (any shell command line)" >&2; exit 2; }
    printf '%s\n' "$CMD" > "$1"
}
if [ "$MODE" = cmd ]; then
    write_cmd "${2:?usage: vm.sh cmd FILE}"
    exit 0
fi
if [ "$MODE" = run ]; then
    [ -n "${CMD:-}" ] || { echo "vm-run: give the command line as CMD='...' (any shell command line)" >&2; exit 2; }
fi

: "${KO:?}" "${BINDIR:?}" "${OUT:?}"
VM_TIMEOUT=${VM_TIMEOUT:-1200}
ACCEL=${RUSTNL_ACCEL:-auto}
BUSYBOX=${BUSYBOX:-/bin/busybox}

BZIMAGE=${KERNEL_IMAGE:-${KBUILD:?KBUILD or KERNEL_IMAGE}/arch/x86/boot/bzImage}
GEN_CPIO=${GEN_CPIO:-${KBUILD:?KBUILD or GEN_CPIO}/usr/gen_init_cpio}
for f in "$BZIMAGE" "$GEN_CPIO" "$KO" "$BINDIR/rustnl" "$BINDIR/rustnl-guest-tests" "$BUSYBOX"; do
    [ -e "$f" ] || die "missing $f (run the make target, not this script directly)"
done
mkdir -p "$OUT"

# The kernel source on the host (its tools/net/ynl and Documentation/netlink
# are used in the guest through /host): toolchain.env's KSRC, as the Makefile.
host_ksrc() {
    local k=${KSRC:-}
    [ -n "$k" ] || k=$( (load_toolchain_env && printf '%s' "${KSRC:-}") 2>/dev/null || true)
    echo "${k:-$CACHE/src/linux}"
}

# --- initramfs ------------------------------------------------------------------
build_initramfs() {  # mode [accel] -> path of cpio
    local mode=$1 dir="$OUT/initramfs-$1"
    mkdir -p "$dir"
    printf '%s\n' "${2:-unknown}" > "$dir/accel"
    printf '%s\n' "$mode" > "$dir/mode"
    if [ "$mode" = run ]; then write_cmd "$dir/cmd"; else echo true > "$dir/cmd"; fi
    printf '%s\n' "${GUEST_ARGS:-}" > "$dir/args"
    printf '%s\n' "${KMEMLEAK:-required}" > "$dir/kmemleak"
    printf 'KSRC=%s\nREPO=%s\n' "$(host_ksrc)" "$HERE" > "$dir/host.env"
    # The docs' `make vm-run` examples, for the guest test that runs them.
    python3 "$HERE/scripts/doccheck.py" --vm-run-examples "$dir/examples" || die "reading the docs' make vm-run examples failed"
    {
        echo "dir /bin 0755 0 0"
        echo "dir /dev 0755 0 0"
        echo "nod /dev/console 0600 0 0 c 5 1"
        echo "nod /dev/null 0666 0 0 c 1 3"
        echo "dir /etc 0755 0 0"
        echo "dir /etc/rustnl 0755 0 0"
        echo "dir /lib 0755 0 0"
        echo "dir /lib/modules 0755 0 0"
        echo "file /bin/busybox $BUSYBOX 0755 0 0"
        echo "slink /bin/sh busybox 0777 0 0"
        echo "file /init $HERE/tests/vm/init 0755 0 0"
        echo "file /etc/rustnl/mode $dir/mode 0644 0 0"
        echo "file /etc/rustnl/cmd $dir/cmd 0644 0 0"
        echo "file /etc/rustnl/args $dir/args 0644 0 0"
        echo "file /etc/rustnl/kmemleak $dir/kmemleak 0644 0 0"
        echo "file /etc/rustnl/host.env $dir/host.env 0644 0 0"
        echo "file /etc/rustnl/rustnl.yaml $HERE/shared/spec/rustnl.yaml 0644 0 0"
        echo "file /etc/rustnl/profile $HERE/tests/vm/profile 0644 0 0"
        echo "file /etc/rustnl/demo $HERE/tests/vm/demo 0755 0 0"
        echo "file /etc/rustnl/dynamic $dir/dynamic 0644 0 0"
        echo "file /etc/rustnl/accel $dir/accel 0644 0 0"
        echo "file /etc/rustnl/examples $dir/examples 0644 0 0"
        echo "file /lib/modules/rustnl.ko $KO 0644 0 0"
        echo "file /bin/rustnl $BINDIR/rustnl 0755 0 0"
        echo "file /bin/rustnl-guest-tests $BINDIR/rustnl-guest-tests 0755 0 0"
        for p in nl_send nl_recv example-unicast example-multicast rustnl-bench; do
            [ -f "$BINDIR/$p" ] && echo "file /bin/$p $BINDIR/$p 0755 0 0"
        done
        : > "$dir/dynamic"
        for f in ${VM_FILES:-}; do
            [ -f "$f" ] || die "VM_FILES: no such file: $f"
            echo "file /$(basename "$f") $(realpath "$f") 0755 0 0"
            # A dynamically linked program runs with the host's loader and
            # libraries through /host (tests/vm/init links them in).
            if LC_ALL=C readelf -l "$f" 2>/dev/null | grep -q 'program interpreter'; then
                echo "/$(basename "$f")" >> "$dir/dynamic"
                [ "$mode" = probe ] || log "VM_FILES: $f is dynamically linked: the guest runs it with the host's loader and libraries (through /host)"
            fi
        done
    } > "$dir/list"
    "$GEN_CPIO" "$dir/list" > "$dir.cpio" || die "gen_init_cpio failed"
    echo "$dir.cpio"
}

# --- QEMU -----------------------------------------------------------------------
# pci=noacpi: PCI interrupts are routed from the BIOS tables, not by ACPI.
# QEMU's _PRT method is an AML loop over the slots; the debug kernel under
# TCG interprets it for longer than ACPICA's 30 s loop limit, the lookup fails
# (AE_AML_LOOP_TIMEOUT), the virtio 9p device gets no interrupt and mounting
# the host root hangs. (acpi=noirq also avoids it, but drops ACPI's whole
# interrupt setup and rewrites the ELCR: a boot in a few then hit a KASAN
# wild-memory-access in handle_edge_irq before any module was loaded.)
qemu_cmd() {  # accel cpio -> prints the argv, one per line
    local accel=$1 cpio=$2 cpu=max
    [ "$accel" = kvm ] && cpu=host
    printf '%s\n' qemu-system-x86_64 -machine pc -accel "$accel" -cpu "$cpu" -smp 2 -m 1536 \
        -no-reboot -kernel "$BZIMAGE" -initrd "$cpio" \
        -append "console=ttyS0 loglevel=7 panic=-1 oops=panic kmemleak=on pci=noacpi" \
        -fsdev local,id=hostroot,path=/,security_model=none,readonly=on,multidevs=remap \
        -device virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot
    # shellcheck disable=SC2086 # QEMU_EXTRA is a list of arguments
    [ -n "${QEMU_EXTRA:-}" ] && printf '%s\n' ${QEMU_EXTRA}
    return 0
}

# KVM is used where it boots; on some machines /dev/kvm exists but guests hang
# or abort, so a short probe decides, and its answer is remembered.
ACCEL_FILE=$CACHE/accel
choose_accel() {
    case "$ACCEL" in kvm|tcg) echo "$ACCEL"; return ;; auto) ;; *) die "RUSTNL_ACCEL must be auto, kvm or tcg" ;; esac
    local qv; qv=$(qemu-system-x86_64 --version | head -n1)
    if [ -f "$ACCEL_FILE" ] && [ "$(sed -n 2p "$ACCEL_FILE")" = "$qv" ]; then
        head -n1 "$ACCEL_FILE"; return
    fi
    local answer=tcg
    if [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
        log "probing KVM (30 s at most; the answer is remembered in $ACCEL_FILE)"
        local cpio; cpio=$(build_initramfs probe)
        local -a argv; mapfile -t argv < <(qemu_cmd kvm "$cpio")
        if timeout -k 5 30 "${argv[@]}" -display none -serial stdio -monitor none </dev/null 2>&1 \
            | tee "$OUT/console-probe.log" | grep -q 'RUSTNL-EXIT=0'; then
            answer=kvm
        fi
    fi
    log "KVM probe: using $answer"
    mkdir -p "$CACHE"; printf '%s\n%s\n' "$answer" "$qv" > "$ACCEL_FILE"
    echo "$answer"
}

accel=$(choose_accel)
[ "$accel" = tcg ] && note="TCG (software emulation: KVM unusable or not chosen)" || note="KVM"
cpio=$(build_initramfs "$MODE" "$accel")
mapfile -t argv < <(qemu_cmd "$accel" "$cpio")
LOG=$OUT/console-$MODE.log
log "booting ${KERNEL_NAME:-the test kernel} under $note; console log: $LOG"
start=$(date +%s)

if [ "$MODE" = shell ]; then
    "${argv[@]}" -nographic
    exit 0
fi

set +e
if [ "$MODE" = test ]; then
    timeout -k 10 "$VM_TIMEOUT" "${argv[@]}" -display none -serial stdio -monitor none </dev/null 2>&1 \
        | stdbuf -oL tr -d '\r' | tee "$LOG"
    rc=("${PIPESTATUS[@]}")
else
    # run, demo: the console to a file, the command's own output (ttyS1) to
    # stdout as the guest wrote it, and a copy of it in $OUTPUT.
    OUTPUT=$OUT/output-$MODE.log
    rm -f "$LOG.raw" "$OUTPUT"
    timeout -k 10 "$VM_TIMEOUT" "${argv[@]}" -display none -monitor none \
        -serial "file:$LOG.raw" -serial stdio </dev/null | tee "$OUTPUT"
    rc=("${PIPESTATUS[@]}")
    tr -d '\r' < "$LOG.raw" > "$LOG" && rm -f "$LOG.raw"
    # A guest without a second serial port wrote the output on the console.
    if grep -aq '^RUSTNL-OUTPUT-ON-CONSOLE' "$LOG"; then
        sed -n '/^RUSTNL-OUTPUT-BEGIN$/,/^RUSTNL-OUTPUT-END$/{/^RUSTNL-OUTPUT-/d;p}' "$LOG" | tee "$OUTPUT"
    fi
    [ -n "${VM_VERBOSE:-}" ] && cat "$LOG"
fi
set -e
secs=$(( $(date +%s) - start ))

# --- verdict -----------------------------------------------------------------------
set +e
bash "$HERE/scripts/verdict.sh" "$LOG" "${rc[0]}" "$VM_TIMEOUT"
fail=$?
set -e
log "accel=$accel time=${secs}s"
[ "$fail" = 0 ] || [ "$MODE" = test ] || log "the kernel's console: $LOG"
if [ "$MODE" = run ]; then
    # The command's own status when it failed; 1 for a clean command on a
    # kernel that splatted or a guest that never finished.
    status=$(sed -n 's/^RUSTNL-EXIT=\([0-9]*\).*/\1/p' "$LOG" | tail -n1)
    [ -n "$status" ] && [ "$status" != 0 ] && exit "$status"
fi
if grep -q '^RUSTNL-REPORT ' "$LOG"; then
    bash "$HERE/scripts/report.sh" "$LOG" "$accel" "$secs" "$OUT/report.json"
fi
if [ "$MODE" = test ]; then
    # One line for the host's totals: the kernel's verdict as a test of its own.
    if [ "$fail" = 0 ]; then
        echo "test result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out (guest kernel: exit, splats, kmemleak)"
    else
        echo "test result: FAILED. 0 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out (guest kernel: exit, splats, kmemleak)"
    fi
fi
exit $fail

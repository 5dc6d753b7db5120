#!/usr/bin/env bash
# make bench: the Rust module against the C reference module, side by side.
#
# Usage:
#   scripts/bench.sh run            the whole benchmark (make bench)
#   scripts/bench.sh profile        instruction profile of 2,000 echoes (64 B)
#                                   in each module, on each face (classic,
#                                   genl), or of 2,000 broadcasts to one
#                                   listener (fanout, genl-fanout);
#                                   BENCH_PROFILE_FACES (make bench-profile)
#   scripts/bench.sh modules KDIR OUTDIR
#                                   build rustnl.ko and rustnl_c.ko against
#                                   KDIR into OUTDIR (sources copied there, so
#                                   builds for several kernels never mix)
# KERNEL=stock (make bench KERNEL=stock [STOCK=sid]): on Debian's stock
# kernel instead (scripts/stock.sh), into build/bench-stock[-sid]/.
# Environment: BENCH_ROUNDS (default 4: A B, B A, A B, B A), RUSTNL_ACCEL, BENCH_CODEC=0
# to skip the userspace codec benchmark.
#
# `run` builds (or reuses) the bench kernel (tests/kernel.config +
# tests/bench/kernel.config: the test kernel without its debug watchers),
# builds both modules against it, boots it twice — once as fast as the host
# allows (KVM where it works, else TCG: wall-clock figures) and once under
# TCG with `-icount shift=0` (guest time follows executed instructions:
# repeatable figures) — runs the same workloads against each module,
# interleaved, then the userspace codec benchmark (criterion) and the
# allocation count, and prints one table (Rust, C, Rust/C) and writes it as
# JSON to build/bench/bench.json.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
rustnl_script bench
BUILD=$HERE/build
OUT=$BUILD/bench
load_toolchain_env
export LIBCLANG_PATH=/usr/lib/llvm-19/lib PATH=$HOME/.cargo/bin:$PATH

build_modules() {  # KDIR OUTDIR
    local kdir=$1 out
    mkdir -p "$2"; out=$(realpath "$2")
    rm -rf "$out/rust/kmod" "$out/rust/shared"
    mkdir -p "$out/rust" "$out/c"
    # The module's sources, without build products (as stock.sh copies them).
    (cd "$HERE" && find Kbuild kmod shared/src -type f \( -name Kbuild -o -name '*.rs' -o -name '*.c' -o -name '*.h' \) \
        ! -name '*.mod.c' ! -name '.*' -exec cp --parents {} "$out/rust/" \;)
    cp "$HERE"/tests/bench/{Kbuild,rustnl_c.c,rustnl_proto.h,rustnl_genl.h} "$out/c/"
    make -s -C "$kdir" M="$out/rust" LLVM=-19 RUSTC="${KRUSTC:-rustc}" BINDGEN=bindgen modules >&2 \
        || die "building rustnl.ko against $kdir"
    make -s -C "$kdir" M="$out/c" LLVM=-19 KCFLAGS=-Werror modules >&2 \
        || die "building rustnl_c.ko against $kdir"
    cp "$out/rust/kmod/rustnl.ko" "$out/c/rustnl_c.ko" "$out/"
    log "modules: $out/rustnl.ko $out/rustnl_c.ko ($(basename "$kdir"))"
}

case "${1:-}" in
modules)
    build_modules "${2:?KDIR}" "${3:?OUTDIR}"
    exit 0 ;;
run|profile) ;;
*) die "usage: bench.sh run | profile | modules KDIR OUTDIR" ;;
esac

ROUNDS=${BENCH_ROUNDS:-4}
if [ "${KERNEL:-test}" = stock ]; then
    # KERNEL=stock: Debian's unmodified kernel, both modules built for it by
    # scripts/stock.sh; results in build/bench-stock/ (STOCK=sid or forky:
    # build/bench-stock-sid/, build/bench-stock-forky/).
    case ${STOCK:-trixie-backports} in
        trixie-backports) OUT=$BUILD/bench-stock ;;
        *) OUT=$BUILD/bench-stock-$STOCK ;;
    esac
    mkdir -p "$OUT"
    bash "$HERE/scripts/stock.sh" module "$OUT/modules" >/dev/null
    VMK=(KERNEL_IMAGE="$(bash "$HERE/scripts/stock.sh" vmlinuz)" GEN_CPIO="$(bash "$HERE/scripts/stock.sh" gen-cpio)"
         KERNEL_NAME="Debian's stock kernel")
else
    kb=$(bash "$HERE/scripts/kernel.sh" "$HERE/tests/kernel.config" "$HERE/tests/bench/kernel.config" benchkernel)
    mkdir -p "$OUT"
    ln -sfn "$kb" "$BUILD/benchkernel"
    build_modules "$kb" "$OUT/modules"
    VMK=(KBUILD="$kb")
fi

run_vm() {  # name, extra env...
    local name=$1; shift
    log "VM run '$name': $ROUNDS rounds of Rust, C"
    env "$@" "${VMK[@]}" KO="$OUT/modules/rustnl.ko" BINDIR="$BUILD/bin" OUT="$OUT/vm-$name" \
        VM_FILES="$OUT/modules/rustnl_c.ko" KMEMLEAK=off VM_TIMEOUT="${BENCH_TIMEOUT:-5400}" \
        CMD="rustnl-bench --rust /lib/modules/rustnl.ko --c /rustnl_c.ko --rounds $ROUNDS" \
        bash "$HERE/scripts/vm.sh" run >&2
    grep -q '^RUSTNL-BENCH-DONE' "$OUT/vm-$name/output-run.log" || die "VM run '$name' did not finish"
}
if [ "$1" = profile ]; then
    # QEMU logs each block executed in the module area; bench_profile.py
    # weighs them by their instruction counts, per module function.
    # BENCH_PROFILE_FACES: which workloads (default both echoes): classic
    # (the CLI's echo on the unit), genl (rustnl-bench --genl-echoes, the
    # family), fanout / genl-fanout (rustnl-bench --broadcasts /
    # --genl-broadcasts: 16 BROADCASTs per datagram, one listener).
    n=2000
    for face in ${BENCH_PROFILE_FACES:-classic genl}; do
        for m in rustnl rustnl_c; do
            case $face in
            classic) out=$OUT/profile-$m; echo_cmd="rustnl echo --count $n --size 64 >/dev/null" ;;
            genl) out=$OUT/profile-$m-genl; echo_cmd="rustnl-bench --genl-echoes $n >/dev/null" ;;
            fanout) out=$OUT/profile-$m-fanout; echo_cmd="rustnl-bench --broadcasts $((n / 16)) >/dev/null" ;;
            genl-fanout) out=$OUT/profile-$m-genl-fanout; echo_cmd="rustnl-bench --genl-broadcasts $((n / 16)) >/dev/null" ;;
            *) die "BENCH_PROFILE_FACES: classic, genl, fanout and/or genl-fanout, not $face" ;;
            esac
            rm -rf "$out"; mkdir -p "$out"
            cmd="grep '\\[$m\\]' /proc/kallsyms; $echo_cmd"
            [ "$m" = rustnl_c ] && cmd="rmmod rustnl && insmod /rustnl_c.ko && $cmd"
            env "${VMK[@]}" KO="$OUT/modules/rustnl.ko" BINDIR="$BUILD/bin" OUT="$out" \
                VM_FILES="$OUT/modules/rustnl_c.ko" KMEMLEAK=off RUSTNL_ACCEL=tcg VM_VERBOSE=1 \
                QEMU_EXTRA="-d in_asm,exec,nochain -dfilter 0xffffffffa0000000..0xffffffffff000000 -D $out/qemu.log" \
                CMD="$cmd" bash "$HERE/scripts/vm.sh" run > "$out/vm.txt" 2>&1 \
                || die "profile VM run ($m, $face): see $out/vm.txt"
            echo "== $m ($face)"
            python3 "$HERE/scripts/bench_profile.py" "$out/qemu.log" "$out/output-run.log" "$n"
        done
    done
    exit 0
fi
run_vm wall
accel=$(head -n1 "$CACHE/accel" 2>/dev/null || echo tcg)
[ -n "${RUSTNL_ACCEL:-}" ] && [ "$RUSTNL_ACCEL" != auto ] && accel=$RUSTNL_ACCEL
run_vm icount RUSTNL_ACCEL=tcg QEMU_EXTRA="-icount shift=0"

codec_args=()
if [ "${BENCH_CODEC:-1}" != 0 ]; then
    log "userspace codec: criterion, rustnl vs netlink-packet-core"
    (cd "$HERE" && cargo bench --locked -p rustnl --bench codec >&2)
    (cd "$HERE" && cargo bench --locked -p rustnl --bench allocs) > "$OUT/allocs.json"
    codec_args=(--criterion "$HERE/target/criterion" --allocs "$OUT/allocs.json")
fi
python3 "$HERE/scripts/bench_report.py" --accel "$accel" \
    --wall "$OUT/vm-wall/output-run.log" --icount "$OUT/vm-icount/output-run.log" \
    "${codec_args[@]}" --json "$OUT/bench.json"

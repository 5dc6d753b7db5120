#!/usr/bin/env bash
# Build (or reuse) the rustnl test kernel (`make kernel`).
#
# Usage: scripts/kernel.sh FRAGMENT... NAME
#   tinyconfig + the FRAGMENTs in order (merged with the kernel's
#   merge_config.sh; a later fragment overrides an earlier one), LLVM=-19,
#   built out of tree under $RUSTNL_CACHE/NAME-<source version>-<key>/, where
#   key hashes the fragments and the compiler versions. A finished build is
#   marked with .rustnl-complete and reused by every clone on this machine.
#   The test kernel is tests/kernel.config; the bench kernel adds
#   tests/bench/kernel.config (the debug watchers off).
#   Both are built from the source with tests/kernel-patches/*.patch applied
#   (fixes of ours for upstream, in `git format-patch` form): a patched copy
#   of the tree, keyed by the patches, under $RUSTNL_CACHE/src/. The key of
#   the build covers the patches too. KERNEL_PATCHES=none builds the
#   unpatched source (to show what a patch fixes).
# Prints the build directory on stdout (everything else goes to stderr).
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: kernel.sh FRAGMENT... NAME" >&2; exit 2; }
NAME=${*: -1}
FRAGS=()
for f in "${@:1:$#-1}"; do FRAGS+=("$(realpath "$f")"); done
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
rustnl_script kernel
load_toolchain_env

export LIBCLANG_PATH=/usr/lib/llvm-19/lib
mkdir -p "$CACHE/locks"

# --- the patched source ---------------------------------------------------------
PATCHES=()
if [ "${KERNEL_PATCHES:-all}" != none ]; then
    for p in "$HERE"/tests/kernel-patches/*.patch; do [ -f "$p" ] && PATCHES+=("$p"); done
fi
if [ ${#PATCHES[@]} -gt 0 ]; then
    pkey=$(cat "${PATCHES[@]}" | sha256sum | cut -c1-12)
    PSRC=$CACHE/src/linux-patched-$pkey
    exec 8>"$CACHE/locks/src-$pkey.lock"
    flock 8
    if [ ! -f "$PSRC/.rustnl-patched" ]; then
        log "applying ${#PATCHES[@]} patch(es) to a copy of the source: $PSRC"
        rm -rf "$PSRC" "$PSRC.tmp"
        # Hard links share the untouched files with the pristine tree; each
        # file a patch touches is copied first, so the pristine tree stays so.
        cp -al "$KSRC" "$PSRC.tmp"
        for p in "${PATCHES[@]}"; do
            for f in $(sed -n 's|^+++ b/||p' "$p"); do
                [ -f "$PSRC.tmp/$f" ] && cp --remove-destination "$KSRC/$f" "$PSRC.tmp/$f"
            done
            patch -s -p1 -N -d "$PSRC.tmp" < "$p" || die "patch $(basename "$p") does not apply to $KSRC_VERSION"
            log "  applied $(basename "$p")"
        done
        basename -a "${PATCHES[@]}" > "$PSRC.tmp/.rustnl-patched"
        mv "$PSRC.tmp" "$PSRC"
        for old in "$CACHE"/src/linux-patched-*; do
            [ "$old" != "$PSRC" ] && [ -d "$old" ] && rm -rf "$old"
        done
    fi
    flock -u 8
    KSRC=$PSRC
fi

KMAKE=(make -s -C "$KSRC" ARCH=x86_64 LLVM=-19 RUSTC="$KRUSTC" BINDGEN=bindgen)
key=$( { cat "${FRAGS[@]}"; echo "$KSRC_VERSION"; "$KRUSTC" --version; bindgen --version; clang-19 --version | head -n1;
         [ ${#PATCHES[@]} -eq 0 ] || cat "${PATCHES[@]}"; } \
       | sha256sum | cut -c1-12)
[ ${#PATCHES[@]} -gt 0 ] || NAME=$NAME-unpatched
OUT=$CACHE/$NAME-${KSRC_VERSION%%-*}-$key
mkdir -p "$OUT"
exec 9>"$CACHE/locks/$NAME.lock"
flock 9
if [ -f "$OUT/.rustnl-complete" ] && [ -f "$OUT/arch/x86/boot/bzImage" ]; then
    log "cached: $OUT (built $(cat "$OUT/.rustnl-complete"))"
    echo "$OUT"; exit 0
fi

log "configuring $NAME kernel in $OUT (tinyconfig + $(for f in "${FRAGS[@]}"; do basename "$f"; done | paste -sd+))"
"${KMAKE[@]}" O="$OUT" tinyconfig >&2
"$KSRC/scripts/kconfig/merge_config.sh" -m -O "$OUT" "$OUT/.config" "${FRAGS[@]}" >/dev/null
"${KMAKE[@]}" O="$OUT" olddefconfig >&2

# Every requested option must have stuck (the last fragment that names an
# option decides what was requested).
declare -A want=()
while IFS= read -r line; do
    case "$line" in
        CONFIG_*=*) want[${line%%=*}]=$line ;;
        "# CONFIG_"*" is not set") opt=${line#\# }; want[${opt%% *}]=$line ;;
    esac
done < <(cat "${FRAGS[@]}")
bad=()
for opt in "${!want[@]}"; do
    line=${want[$opt]}
    case "$line" in
        CONFIG_*=*) grep -qxF "$line" "$OUT/.config" || bad+=("$line (got: $(grep -E "^(# )?$opt[= ]" "$OUT/.config" || echo absent))") ;;
        *) grep -q "^$opt=" "$OUT/.config" && bad+=("$line (got: $(grep "^$opt=" "$OUT/.config"))") ;;
    esac
done
if [ ${#bad[@]} -gt 0 ]; then
    printf 'kernel: error: requested option did not stick: %s\n' "${bad[@]}" >&2
    exit 1
fi
log "config verified: all ${#want[@]} requested options set"

# One CPU-heavy build at a time on this machine (kernels, the stock
# kernel's Rust metadata): they share its cores.
# (RUSTNL_CPU_LOCK_HELD=1: the caller holds it already, as in stock.sh.)
exec 7>"$CACHE/locks/cpu-heavy.lock"
[ -n "${RUSTNL_CPU_LOCK_HELD:-}" ] || flock -n 7 || { log "waiting for another CPU-heavy build to finish"; flock 7; }
start=$(date +%s)
log "building $NAME kernel (cold build: ~7 min on 2 idle cores, longer on a busy machine)"
"${KMAKE[@]}" O="$OUT" -j"$(nproc)" bzImage modules >&2 || die "kernel build failed"
# Rust module builds out of tree need rust/ artifacts; `modules_prepare` ensures them.
"${KMAKE[@]}" O="$OUT" -j"$(nproc)" modules_prepare >&2 || die "modules_prepare failed"
# The initramfs writer (host tool); built by kbuild under usr/ when it needs it.
[ -x "$OUT/usr/gen_init_cpio" ] || cc -O2 -o "$OUT/usr/gen_init_cpio" "$KSRC/usr/gen_init_cpio.c" \
    || die "cannot build usr/gen_init_cpio"
secs=$(( $(date +%s) - start ))
printf '%s (%ss, %s, %s)\n' "$(date -u +%FT%TZ)" "$secs" "$RUST_SOURCE" "$KSRC_VERSION" > "$OUT/.rustnl-complete"
log "built in ${secs}s: $OUT"
# Builds of the same kernel with an older fragment or toolchain are stale.
for old in "$CACHE/$NAME"-[0-9]*; do
    [ "$old" != "$OUT" ] && [ -d "$old" ] && { log "removing stale build $old"; rm -rf "$old"; }
done
echo "$OUT"

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
# Prints the build directory on stdout (everything else goes to stderr).
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: kernel.sh FRAGMENT... NAME" >&2; exit 2; }
NAME=${*: -1}
FRAGS=()
for f in "${@:1:$#-1}"; do FRAGS+=("$(realpath "$f")"); done
CACHE=${RUSTNL_CACHE:-$HOME/.cache/rustnl}
# shellcheck disable=SC1091
eval "$(sed -n 's/^\([A-Z_]*\) := \(.*\)$/\1='"'"'\2'"'"'/p' "$CACHE/toolchain.env")"
log() { printf 'kernel: %s\n' "$*" >&2; }
die() { printf 'kernel: error: %s\n' "$*" >&2; exit 1; }

export LIBCLANG_PATH=/usr/lib/llvm-19/lib
KMAKE=(make -s -C "$KSRC" ARCH=x86_64 LLVM=-19 RUSTC="$KRUSTC" BINDGEN=bindgen)
key=$( { cat "${FRAGS[@]}"; echo "$KSRC_VERSION"; "$KRUSTC" --version; bindgen --version; clang-19 --version | head -n1; } \
       | sha256sum | cut -c1-12)
OUT=$CACHE/$NAME-${KSRC_VERSION%%-*}-$key
mkdir -p "$OUT"
mkdir -p "$CACHE/locks"
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

start=$(date +%s)
log "building $NAME kernel (cold build: ~15-25 min on 2 cores)"
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
for old in "$CACHE/$NAME"-*; do
    [ "$old" != "$OUT" ] && [ -d "$old" ] && { log "removing stale build $old"; rm -rf "$old"; }
done
echo "$OUT"

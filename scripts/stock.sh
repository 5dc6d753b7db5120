#!/usr/bin/env bash
# rustnl on Debian's stock 7.3 kernel (`make stock-module`, issue 12).
#
# Debian's kernel is built with Rust enabled, but its headers packages carry no
# Rust metadata (rust/*.rmeta, the proc-macro libraries, target.json). Rust
# symbol names embed a hash of rustc's full version string, so the metadata
# must be regenerated with Debian's own toolchain: rustc/rust-src 1.85.1,
# bindgen 0.71.1, libclang 19 and gcc-14 from trixie. On bookworm they come
# from a trixie chroot (debootstrap, the mirror read from the machine's apt
# sources at run time), cached under $RUSTNL_CACHE/stock/.
#
# Usage: scripts/stock.sh STEP
#   chroot         create (or reuse) the trixie chroot with the toolchain
#   fetch          download and unpack the stock kernel's packages
#                  (headers, kbuild, image); prints the unpack dir
#   metadata       regenerate the Rust metadata for the stock kernel (an O=
#                  tree of the unpatched source with Debian's config); prints it
#   module OUTDIR  build rustnl.ko for the stock kernel into OUTDIR, checked
#                  against the stock kernel (release, rustc_cfg, symbols)
#   vmlinuz        prints the stock kernel image
#   gen-cpio       prints the initramfs writer (built from the source once)
#   run CMD...     run CMD in the chroot (the cache and the tree mounted)
#   dkms-test OUTDIR   dkms add/build/install in the chroot (made a trixie +
#                  backports machine); the installed module to OUTDIR/rustnl.ko
#   dkms RELEASE   (dkms.conf's MAKE) on a Debian machine with Debian's kernel
#                  toolchain installed (trixie: gcc-14, rustc, rust-src,
#                  bindgen, libclang-19-dev, pahole), linux-headers-RELEASE and
#                  linux-source-7.3: regenerate the metadata natively (cache
#                  /var/cache/rustnl) and build kmod/rustnl.ko in this tree
# Environment: STOCK_RELEASE (default: `uname -r` if it is a Debian 7.3 amd64
# kernel, else 7.3.4+deb13-amd64).
# Every step prints its result on stdout and everything else on stderr.
set -euo pipefail
{ # (the whole script is read before it runs: editing it cannot upset a running build)
HERE=$(cd "$(dirname "$0")/.." && pwd)
# dkms mode: this machine is the target (no chroot, no downloads).
NATIVE=
if [ "${1:-}" = dkms ]; then
    NATIVE=1
    STOCK_RELEASE=${2:?usage: stock.sh dkms RELEASE}
    RUSTNL_CACHE=${RUSTNL_CACHE:-/var/cache/rustnl}
fi
CACHE=${RUSTNL_CACHE:-$HOME/.cache/rustnl}
CACHE=$(mkdir -p "$CACHE" && cd "$CACHE" && pwd)
SUITE=trixie
log() { printf 'stock: %s\n' "$*" >&2; }
die() { printf 'stock: error: %s\n' "$*" >&2; exit 1; }

case "$(uname -r)" in 7.3.*+deb13-amd64) DEF_RELEASE=$(uname -r) ;; *) DEF_RELEASE=7.3.4+deb13-amd64 ;; esac
RELEASE=${STOCK_RELEASE:-$DEF_RELEASE}
case "$RELEASE" in
    *+deb13-*) ABI=${RELEASE%-*} ;;   # 7.3.4+deb13-amd64 -> 7.3.4+deb13
    *) die "STOCK_RELEASE=$RELEASE is not a Debian trixie kernel release (like 7.3.4+deb13-amd64)" ;;
esac
FLAVOUR=${RELEASE##*-}

SUDO=
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || die "not root and no sudo: the chroot needs root"
    SUDO=sudo
fi
export DEBIAN_FRONTEND=noninteractive
STOCK=$CACHE/stock
ROOT=$STOCK/chroot-$SUITE
mkdir -p "$STOCK" "$CACHE/locks"

# The machine's Debian mirror (debian_uri): no host name is written into
# the repository.
# shellcheck source=scripts/lib.sh
. "$HERE/scripts/lib.sh"

is_installed() { [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" = installed ]; }
host_pkgs() {  # install host packages that are missing
    local missing=() p
    for p in "$@"; do is_installed "$p" || missing+=("$p"); done
    [ ${#missing[@]} -eq 0 ] && return 0
    log "installing host packages: ${missing[*]}"
    $SUDO apt-get update -qq || die "apt-get update failed"
    $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
        || die "apt-get install ${missing[*]} failed"
}

# --- the chroot -------------------------------------------------------------------
# Debian's kernel toolchain (the versions its 7.3 kernel was built with).
CHROOT_PKGS=(gcc-14 libc6-dev make flex bison bc libelf-dev libssl-dev python3 perl
             cpio kmod openssl rustc rust-src bindgen libclang-19-dev pahole xz-utils)
# Inside the chroot the cache and the tree are mounted at their own paths, so
# every path means the same thing inside and out. A private mount namespace
# (unshare -m) takes the mounts away when the command ends.
in_chroot() {
    if [ -n "$NATIVE" ]; then "$@"; return; fi
    $SUDO unshare -m --propagation private /bin/sh -ec '
        root=$1; shift; cache=$1; shift; here=$1; shift
        mount -t proc proc "$root/proc"
        mount --rbind /dev "$root/dev"
        mkdir -p "$root$cache" "$root$here"
        mount --bind "$cache" "$root$cache"
        mount --bind "$here" "$root$here"
        exec chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
             DEBIAN_FRONTEND=noninteractive "$@"' sh "$ROOT" "$CACHE" "$HERE" "$@"
}

ensure_chroot() {
    [ -z "$NATIVE" ] || return 0
    exec 8>"$CACHE/locks/stock-chroot.lock"; flock 8
    if [ ! -f "$ROOT/.rustnl-debootstrap" ]; then
        host_pkgs debootstrap debian-archive-keyring
        local uri; uri=$(debian_uri)
        [ -n "$uri" ] || die "cannot find the Debian mirror URI in the apt sources"
        log "debootstrap $SUITE into $ROOT (from the machine's Debian mirror; a few minutes)"
        local t0=$SECONDS
        $SUDO rm -rf "$ROOT"
        $SUDO debootstrap --variant=minbase "$SUITE" "$ROOT" "$uri" >"$STOCK/debootstrap.log" 2>&1 \
            || die "debootstrap $SUITE failed (see $STOCK/debootstrap.log)"
        $SUDO touch "$ROOT/.rustnl-debootstrap"
        log "debootstrap done in $((SECONDS - t0))s"
    fi
    local missing=() p have
    have=$(in_chroot dpkg-query -W -f='${Package} ${db:Status-Status}\n' "${CHROOT_PKGS[@]}" 2>/dev/null || true)
    for p in "${CHROOT_PKGS[@]}"; do
        grep -qx "$p installed" <<<"$have" || missing+=("$p")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        log "installing in the $SUITE chroot: ${missing[*]}"
        in_chroot apt-get update -qq >&2 || die "apt-get update in the chroot failed"
        in_chroot apt-get install -y -qq --no-install-recommends "${missing[@]}" >"$STOCK/chroot-apt.log" 2>&1 \
            || die "apt-get install in the chroot failed (see $STOCK/chroot-apt.log)"
    fi
    flock -u 8
}
# --- the stock kernel's packages ---------------------------------------------------
PKGDIR=$STOCK/pkgs-$RELEASE
candidate() { apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/{print $2}'; }
ensure_fetch() {
    if [ -n "$NATIVE" ]; then
        [ -f "$HDR/.config" ] && [ -f "$HDR/Module.symvers" ] \
            || die "no headers for $RELEASE in $HDR: install linux-headers-$RELEASE"
        return 0
    fi
    exec 7>"$CACHE/locks/stock-fetch.lock"; flock 7
    if [ -f "$PKGDIR/.rustnl-complete" ]; then flock -u 7; return 0; fi
    local pkgs=("linux-headers-$RELEASE" "linux-headers-$ABI-common" "linux-kbuild-$ABI") p v updated=
    # The image: Debian 7.x splits linux-image-* into linux-binary-* (vmlinuz)
    # and linux-modules-*; older releases ship vmlinuz in linux-image-* itself.
    v=$(candidate "linux-binary-$RELEASE")
    if [ -z "$v" ] || [ "$v" = "(none)" ]; then $SUDO apt-get update -qq || true; updated=1; v=$(candidate "linux-binary-$RELEASE"); fi
    if [ -n "$v" ] && [ "$v" != "(none)" ]; then pkgs+=("linux-binary-$RELEASE"); else pkgs+=("linux-image-$RELEASE"); fi
    local dl; dl=$(mktemp -d "$STOCK/dl.XXXXXX"); chmod 0777 "$dl"   # apt downloads as _apt
    for p in "${pkgs[@]}"; do
        v=$(candidate "$p")
        if { [ -z "$v" ] || [ "$v" = "(none)" ]; } && [ -z "$updated" ]; then
            $SUDO apt-get update -qq || true; updated=1; v=$(candidate "$p")
        fi
        [ -n "$v" ] && [ "$v" != "(none)" ] || { rm -rf "$dl"; die "no package $p in the apt sources: the stock kernel $RELEASE needs Debian's trixie-backports suite (run \`make deps\`, which adds it)"; }
        log "downloading $p $v"
        (cd "$dl" && apt-get download -qq "$p=$v" 2>/dev/null) || { rm -rf "$dl"; die "apt-get download $p=$v failed"; }
    done
    rm -rf "$PKGDIR"; mkdir -p "$PKGDIR/root"
    for p in "$dl"/*.deb; do dpkg-deb -x "$p" "$PKGDIR/root"; done
    mkdir -p "$PKGDIR/debs"; mv "$dl"/*.deb "$PKGDIR/debs/"; rm -rf "$dl"
    local h=$PKGDIR/root/usr/src/linux-headers-$RELEASE
    [ -f "$h/Module.symvers" ] && [ -f "$h/.config" ] || die "the headers package for $RELEASE has no Module.symvers or .config"
    stock_vmlinuz >/dev/null || die "no vmlinuz for $RELEASE in ${pkgs[*]: -1}"
    date -u +%FT%TZ > "$PKGDIR/.rustnl-complete"
    flock -u 7
}
HDR=$PKGDIR/root/usr/src/linux-headers-$RELEASE
[ -z "$NATIVE" ] || HDR=/usr/src/linux-headers-$RELEASE
stock_vmlinuz() {  # 7.x: /usr/lib/modules/<release>/vmlinuz; older: /boot/vmlinuz-<release>
    local f
    for f in "$PKGDIR/root/usr/lib/modules/$RELEASE/vmlinuz" "$PKGDIR/root/boot/vmlinuz-$RELEASE"; do
        [ -f "$f" ] && { echo "$f"; return 0; }
    done
    return 1
}

# Toolchain versions, one line each (part of the metadata key).
toolchain_versions() {
    in_chroot sh -c 'rustc --version; bindgen --version; gcc-14 --version | head -n1;
        dpkg-query -W -f="\${Package} \${Version}\n" rustc rust-src libclang-19-dev pahole'
}

# --- the Rust metadata -------------------------------------------------------------
# Debian's make variables for its kernel build (the headers' .kernelvariables).
KVARS=(ARCH=x86 CROSS_COMPILE=x86_64-linux-gnu- CC=x86_64-linux-gnu-gcc-14 KERNELRELEASE="$RELEASE")
KSRC=$CACHE/src/linux
# dkms mode: Debian's linux-source-X.Y package, unpacked into the cache once.
native_source() {
    local pkg; pkg=linux-source-$(echo "$RELEASE" | cut -d. -f1-2)   # 7.3.4+deb13-amd64 -> linux-source-7.3
    local ver; ver=$(dpkg-query -W -f='${Version}' "$pkg" 2>/dev/null || true)
    [ -n "$ver" ] && [ -f "/usr/src/$pkg.tar.xz" ] || die "no source for $RELEASE: install $pkg (the same version as linux-headers-$RELEASE)"
    KSRC=$CACHE/src/$pkg-$ver
    if [ ! -f "$KSRC/.rustnl-unpacked" ]; then
        log "unpacking /usr/src/$pkg.tar.xz into $KSRC"
        rm -rf "$KSRC" "$KSRC.tmp"; mkdir -p "$KSRC.tmp"
        tar -xJf "/usr/src/$pkg.tar.xz" -C "$KSRC.tmp" --strip-components=1 || die "cannot unpack /usr/src/$pkg.tar.xz"
        touch "$KSRC.tmp/.rustnl-unpacked"; mv "$KSRC.tmp" "$KSRC"
    fi
    SRCVER=$ver
    HDRVER=$(dpkg-query -W -f='${Version}' "linux-headers-$RELEASE" 2>/dev/null || true)
}
# The kernel's own record of its toolchain against what is installed.
check_toolchain() {
    local want have what
    for what in RUSTC BINDGEN CC; do
        want=$(sed -n "s/^CONFIG_${what}_VERSION_TEXT=\"\(.*\)\"$/\1/p" "$HDR/.config")
        case $what in
            RUSTC) have=$(in_chroot rustc --version 2>/dev/null || echo "no rustc") ;;
            BINDGEN) have=$(in_chroot bindgen --version 2>/dev/null || echo "no bindgen") ;;
            CC) have=$(in_chroot x86_64-linux-gnu-gcc-14 --version 2>/dev/null | head -n1 || echo "no x86_64-linux-gnu-gcc-14") ;;
        esac
        [ -z "$want" ] || [ "$have" = "$want" ] \
            || die "toolchain mismatch: the kernel was built with '$want', here: '$have' (Debian trixie's gcc-14, rustc + rust-src, bindgen are needed)"
    done
}
# A failed kernel make: its first errors, then one line naming the log.
fail_log() {  # LOG WHAT
    { grep -m5 -E '(^|: )(error|ERROR)\b|Error [0-9]' "$1" || tail -n 5 "$1"; } >&2
    die "$2 (full log: $1)"
}
kmake_logged() {  # log-file what make-args...
    local logf=$1 what=$2; shift 2
    in_chroot make -C "$KSRC" "${KVARS[@]}" "$@" >"$logf" 2>&1 || fail_log "$logf" "$what failed"
}
kmake_to() {  # log-file make-args...: a kernel make in the chroot, appending to the log
    local logf=$1; shift
    in_chroot make -C "$KSRC" "${KVARS[@]}" "$@" >>"$logf" 2>&1
}
# CPU-heavy work holds the machine's CPU lock (kernel builds take it too) and
# runs niced: the cores are shared.
cpu_heavy() {
    (
        local t0=$SECONDS
        flock 5
        [ $((SECONDS - t0)) -lt 2 ] || log "waited $((SECONDS - t0))s for the CPU lock"
        renice -n 5 -p "$BASHPID" >/dev/null
        "$@"
    ) 5>"$CACHE/locks/cpu-heavy.lock"
}
# Every symbol the regenerated crates export (rust/exports_*_generated.h) must
# be exported under the same name by the stock kernel: Rust names carry a
# hash of the crate and of rustc's full version, so one differing toolchain
# shows up here as thousands of missing names.
check_exports() {  # O
    local o=$1 ours missing n
    ours=$(sed -n 's/^EXPORT_SYMBOL_RUST_GPL(\(.*\));$/\1/p' "$o"/rust/exports_*_generated.h | sort -u)
    n=$(printf '%s\n' "$ours" | grep -c . || true)
    [ "$n" -gt 0 ] || die "the regenerated rust/ exports no symbols: $o is not a Rust-enabled build"
    missing=$(comm -23 <(printf '%s\n' "$ours") <(awk '{print $2}' "$HDR/Module.symvers" | sort -u))
    if [ -n "$missing" ]; then
        printf '%s\n' "$missing" > "$o/missing-exports.txt"
        die "symbol mismatch: $(printf '%s\n' "$missing" | wc -l) of $n Rust exports of the regenerated crates are not in the stock Module.symvers, e.g. $(printf '%s\n' "$missing" | head -n1) (the toolchain differs from Debian's; list: $o/missing-exports.txt)"
    fi
    log "exports: all $n Rust exports of the regenerated crates are in the stock Module.symvers"
}
check_stock_match() {  # O
    local o=$1
    [ "$(cat "$o/include/config/kernel.release")" = "$(cat "$HDR/include/config/kernel.release")" ] \
        || die "release mismatch: regenerated $(cat "$o/include/config/kernel.release"), stock $(cat "$HDR/include/config/kernel.release")"
    cmp -s "$o/include/generated/utsrelease.h" "$HDR/include/generated/utsrelease.h" \
        || die "release mismatch: include/generated/utsrelease.h differs from the stock headers'"
    if ! cmp -s "$o/include/generated/rustc_cfg" "$HDR/include/generated/rustc_cfg"; then
        local d; d=$(diff <(sort "$HDR/include/generated/rustc_cfg") <(sort "$o/include/generated/rustc_cfg") | grep '^[<>]' | head -n 2 | paste -sd' ' || true)
        die "rustc_cfg mismatch with the stock kernel: $d"
    fi
}
ensure_metadata() {
    ensure_chroot; ensure_fetch
    grep -qx 'CONFIG_RUST=y' "$HDR/.config" || die "the kernel $RELEASE is not Rust-enabled (no CONFIG_RUST=y in $HDR/.config)"
    check_toolchain
    local srcver hdrver
    if [ -n "$NATIVE" ]; then
        native_source; srcver=$SRCVER; hdrver=$HDRVER
    else
        [ -f "$KSRC/Makefile" ] && [ -f "$CACHE/src/VERSION" ] \
            || die "no kernel source in $KSRC: run \`make deps\` (it unpacks Debian's linux-source-7.3)"
        srcver=$(cat "$CACHE/src/VERSION")
        hdrver=$(dpkg-deb -f "$PKGDIR"/debs/linux-headers-"$RELEASE"_*.deb Version)
    fi
    [ "$srcver" = "$hdrver" ] \
        || die "no source for $RELEASE: $KSRC is linux-source $srcver, the stock kernel is $hdrver (RUSTNL_REFRESH_SRC=1 make deps fetches the current linux-source)"
    local key
    key=$( { echo "$RELEASE $srcver"; cat "$HDR/.config"; toolchain_versions; } | sha256sum | cut -c1-12)
    META=$STOCK/meta-$RELEASE-$key
    exec 6>"$CACHE/locks/stock-meta.lock"; flock 6
    if [ -f "$META/.rustnl-complete" ]; then
        log "Rust metadata cached: $META"
        flock -u 6; return 0
    fi
    rm -rf "$META"; mkdir -p "$META"
    cp "$HDR/.config" "$META/.config"
    log "regenerating the Rust metadata for $RELEASE in $META (Debian's config and toolchain)"
    local t0=$SECONDS
    kmake_logged "$META/build.log" "olddefconfig" O="$META" olddefconfig
    cmp -s "$HDR/.config" "$META/.config" || {
        local d; d=$(diff "$HDR/.config" "$META/.config" | grep '^[<>]' | head -n 2 | paste -sd' ' || true)
        die "config mismatch: olddefconfig in the chroot changed Debian's config: $d"; }
    # `modules_prepare` is what out-of-tree modules need: the host tools
    # (modpost, objtool), the generated headers, scripts/module.lds and,
    # with CONFIG_RUST, rust/ (core, the kernel crates' .rmeta, the proc
    # macros). Held under the machine's CPU lock, niced.
    log "building modules_prepare (host tools, generated headers, rust/): waits for the CPU lock"
    cpu_heavy kmake_to "$META/build.log" O="$META" -j"$(nproc)" modules_prepare \
        || fail_log "$META/build.log" "modules_prepare failed"
    check_stock_match "$META"
    check_exports "$META"
    # modpost resolves against the stock exports; pahole takes the module BTF
    # base from the stock vmlinux (the headers ship it for that).
    cp "$HDR/Module.symvers" "$META/Module.symvers"
    cp "$HDR/vmlinux" "$META/vmlinux"
    printf '%s (%ss)\n' "$(date -u +%FT%TZ)" "$((SECONDS - t0))" > "$META/.rustnl-complete"
    log "Rust metadata for $RELEASE ready in $((SECONDS - t0))s"
    for old in "$STOCK/meta-$RELEASE"-*; do
        [ "$old" != "$META" ] && [ -d "$old" ] && { log "removing stale $old"; rm -rf "$old"; }
    done
    flock -u 6
}

# --- DKMS, proved in the chroot ------------------------------------------------------
# The chroot plays a Debian trixie machine: trixie-backports added (pinned to
# 100, as scripts/deps.sh does here), dkms + linux-headers-RELEASE +
# linux-source-7.3 installed by apt, the DKMS tree from `install.sh
# dkms-src`, then `dkms add / build / install -k RELEASE` exactly as a user
# runs them (its own cache, /var/cache/rustnl in the chroot: a cold build).
# The installed module is copied (uncompressed) to OUTDIR/rustnl.ko.
dkms_test() {  # OUTDIR
    local outdir; outdir=$(mkdir -p "$1" && cd "$1" && pwd)
    ensure_chroot
    local uri; uri=$(debian_uri)
    [ -n "$uri" ] || die "cannot find the Debian mirror URI in the apt sources"
    if [ ! -f "$ROOT/etc/apt/sources.list.d/$SUITE-backports.sources" ]; then
        printf 'Types: deb\nURIs: %s\nSuites: %s-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
            "$uri" "$SUITE" | $SUDO tee "$ROOT/etc/apt/sources.list.d/$SUITE-backports.sources" >/dev/null
        printf 'Package: *\nPin: release n=%s-backports\nPin-Priority: 100\n' "$SUITE" \
            | $SUDO tee "$ROOT/etc/apt/preferences.d/$SUITE-backports" >/dev/null
        in_chroot apt-get update -qq >&2 || die "apt-get update in the chroot failed"
    fi
    local srcpkg; srcpkg=linux-source-$(echo "$RELEASE" | cut -d. -f1-2)
    log "installing dkms, linux-headers-$RELEASE, $srcpkg in the chroot"
    in_chroot apt-get install -y -qq --no-install-recommends dkms "linux-headers-$RELEASE" "$srcpkg" >"$STOCK/chroot-dkms-apt.log" 2>&1 \
        || die "apt-get install dkms linux-headers-$RELEASE $srcpkg in the chroot failed (see $STOCK/chroot-dkms-apt.log)"
    local src; src=$(DESTDIR=$ROOT bash "$HERE/scripts/install.sh" dkms-src)
    local ver=${src##*/rustnl-}
    in_chroot dkms remove "rustnl/$ver" --all >/dev/null 2>&1 || true
    in_chroot dkms add "rustnl/$ver" >&2 || die "dkms add rustnl/$ver failed"
    log "dkms build rustnl/$ver -k $RELEASE (regenerates the Rust metadata: waits for the CPU lock)"
    local t0=$SECONDS
    cpu_heavy in_chroot dkms build "rustnl/$ver" -k "$RELEASE" >&2 \
        || { cat "$ROOT/var/lib/dkms/rustnl/$ver/build/make.log" >&2 2>/dev/null; die "dkms build rustnl/$ver -k $RELEASE failed"; }
    log "dkms build took $((SECONDS - t0))s"
    in_chroot dkms install "rustnl/$ver" -k "$RELEASE" >&2 || die "dkms install rustnl/$ver -k $RELEASE failed"
    in_chroot dkms status >&2
    local ko; ko=$(find "$ROOT/lib/modules/$RELEASE/updates" -name 'rustnl.ko*' | head -n1)
    [ -n "$ko" ] || die "dkms install left no rustnl.ko under /lib/modules/$RELEASE/updates"
    log "installed: ${ko#"$ROOT"}"
    case "$ko" in
        *.xz) xz -dc "$ko" > "$outdir/rustnl.ko" ;;
        *.zst) zstd -dc "$ko" > "$outdir/rustnl.ko" ;;
        *.gz) gzip -dc "$ko" > "$outdir/rustnl.ko" ;;
        *) cp "$ko" "$outdir/rustnl.ko" ;;
    esac
    HDR=$ROOT/usr/src/linux-headers-$RELEASE check_module "$outdir/rustnl.ko"
    # The proof's 2.5 GB (apt's downloads, the unpacked source and metadata
    # of dkms's cold build) are not kept: each run builds cold again.
    in_chroot apt-get clean
    $SUDO rm -rf "$ROOT/var/cache/rustnl"
    echo "$outdir/rustnl.ko"
}

# --- the module --------------------------------------------------------------------
vermagic_expected() {
    local v="$RELEASE SMP"
    grep -qx 'CONFIG_PREEMPT_RT=y' "$HDR/.config" && v+=" preempt_rt" || { grep -qx 'CONFIG_PREEMPT_BUILD=y' "$HDR/.config" && v+=" preempt"; }
    grep -qx 'CONFIG_MODULE_UNLOAD=y' "$HDR/.config" && v+=" mod_unload"
    grep -qx 'CONFIG_MODVERSIONS=y' "$HDR/.config" && v+=" modversions"
    echo "$v"
}
# The module's sources (Kbuild, kmod/, the shared crate's sources it includes),
# without build products.
copy_module_source() {  # FROM TO
    (cd "$1" && find Kbuild kmod shared/src -type f \( -name Kbuild -o -name '*.rs' -o -name '*.c' -o -name '*.h' \) \
        ! -name '*.mod.c' ! -name '.*' -exec cp --parents {} "$2/" \;)
}
build_module() {  # OUTDIR
    local outdir; outdir=$(mkdir -p "$1" && cd "$1" && pwd)
    ensure_metadata
    # Kbuild builds in the module's directory: a copy, so that kmod/ (the
    # test kernel's build) never sees objects of the stock build.
    local src=$HERE/build/stock/src
    rm -rf "$src"; mkdir -p "$src"
    copy_module_source "$HERE" "$src"
    # The C reference module (tests/bench) too: the bench smoke test and
    # `make bench` load both.
    local csrc=$HERE/build/stock/src-c
    rm -rf "$csrc"; mkdir -p "$csrc"
    cp "$HERE"/tests/bench/{Kbuild,rustnl_c.c,rustnl_proto.h,rustnl_genl.h} "$csrc/"
    log "building rustnl.ko (and the C reference rustnl_c.ko) for $RELEASE"
    local t0=$SECONDS
    : > "$src/build.log"
    cpu_heavy kmake_to "$src/build.log" O="$META" M="$src" modules \
        || fail_log "$src/build.log" "module build failed"
    cpu_heavy kmake_to "$src/build.log" O="$META" M="$csrc" KCFLAGS=-Werror modules \
        || fail_log "$src/build.log" "rustnl_c.ko build failed"
    check_module "$src/kmod/rustnl.ko"
    cp "$src/kmod/rustnl.ko" "$outdir/rustnl.ko"
    cp "$csrc/rustnl_c.ko" "$outdir/rustnl_c.ko"
    log "rustnl.ko for $RELEASE built in $((SECONDS - t0))s"
    echo "$outdir/rustnl.ko"
}
# The built module against the stock kernel: vermagic, every undefined symbol.
check_module() {  # KO
    local ko=$1
    [ -f "$ko" ] || die "the module build made no $ko"
    local vm want; vm=$(in_chroot modinfo -F vermagic "$ko" | sed 's/ *$//'); want=$(vermagic_expected)
    [ "$vm" = "$want" ] || die "vermagic mismatch: rustnl.ko has '$vm', the stock kernel '$want'"
    local undef missing
    undef=$(in_chroot nm -u "$ko" | awk '{print $2}' | sort -u)
    missing=$(comm -23 <(printf '%s\n' "$undef") <(awk '{print $2}' "$HDR/Module.symvers" | sort -u) | grep -v '^$' || true)
    [ -z "$missing" ] || die "symbol mismatch: rustnl.ko needs $(printf '%s\n' "$missing" | wc -l) symbols the stock kernel does not export, e.g. $(printf '%s\n' "$missing" | head -n1)"
    log "checked $ko: vermagic '$vm'; all $(printf '%s\n' "$undef" | wc -l) undefined symbols ($(printf '%s\n' "$undef" | grep -c '^_R' || true) Rust) are in the stock Module.symvers"
}
# dkms: the module in this tree (dkms's build directory), kmod/rustnl.ko.
build_dkms() {
    ensure_metadata
    log "building rustnl.ko for $RELEASE in $HERE"
    : > "$HERE/stock-build.log"
    cpu_heavy kmake_to "$HERE/stock-build.log" O="$META" M="$HERE" modules \
        || fail_log "$HERE/stock-build.log" "module build failed"
    check_module "$HERE/kmod/rustnl.ko"
    echo "$HERE/kmod/rustnl.ko"
}

case "${1:-}" in
chroot)
    ensure_chroot
    toolchain_versions >&2
    echo "$ROOT" ;;
fetch)
    ensure_fetch; echo "$PKGDIR/root" ;;
vmlinuz)
    ensure_fetch; stock_vmlinuz ;;
gen-cpio)   # the initramfs writer for scripts/vm.sh (the kernel's host tool)
    [ -f "$KSRC/usr/gen_init_cpio.c" ] || die "no kernel source in $KSRC: run \`make deps\`"
    if [ ! -x "$STOCK/gen_init_cpio" ]; then
        cc -O2 -o "$STOCK/gen_init_cpio.tmp" "$KSRC/usr/gen_init_cpio.c" && mv "$STOCK/gen_init_cpio.tmp" "$STOCK/gen_init_cpio" \
            || die "cannot build gen_init_cpio"
    fi
    echo "$STOCK/gen_init_cpio" ;;
metadata)
    ensure_metadata; echo "$META" ;;
dkms)
    build_dkms ;;
dkms-test)
    [ -n "${2:-}" ] || die "usage: stock.sh dkms-test OUTDIR"
    dkms_test "$2" ;;
module)
    [ -n "${2:-}" ] || die "usage: stock.sh module OUTDIR"
    build_module "$2" ;;
run)
    shift; ensure_chroot; in_chroot "$@" ;;
*)
    die "usage: stock.sh chroot|fetch|metadata|module OUTDIR|vmlinuz|gen-cpio|run CMD...|dkms RELEASE" ;;
esac
exit
}

#!/usr/bin/env bash
# rustnl on Debian's stock Rust-enabled kernels (`make stock-module`, issues
# 12 and 21).
#
# Debian's kernels are built with Rust enabled, but their headers packages
# carry no Rust metadata (rust/*.rmeta, the proc-macro libraries,
# target.json). Rust symbol names embed a hash of rustc's full version string,
# so the metadata must be regenerated with Debian's own toolchain, from the
# suite that built the kernel, in a chroot of that suite (debootstrap, the
# mirror read from the machine's apt sources at run time), cached under
# $RUSTNL_CACHE/stock/. The kernel lines (STOCK):
#   trixie-backports (default)  7.3: rustc/rust-src 1.85.1, bindgen 0.71.1,
#                  libclang 19, gcc-14 from a trixie chroot; the kernel's
#                  packages from the host's pinned trixie-backports, the
#                  source from `make deps`
#   sid, forky     7.2 today: rustc/rust-src 1.97.1, bindgen 0.72.1, gcc-16,
#                  the suite's libclang from a chroot of that suite; the
#                  release is the suite's linux-image-amd64, its packages and
#                  linux-source-X.Y are downloaded by apt in the chroot
#
# Usage: scripts/stock.sh STEP
#   chroot         create (or reuse) the chroot with the toolchain
#   release        prints the stock kernel's release (e.g. 7.3.4+deb13-amd64)
#   fetch          download and unpack the stock kernel's packages
#                  (headers, kbuild, image); prints the unpack dir
#   metadata       regenerate the Rust metadata for the stock kernel (an O=
#                  tree of the unpatched source with Debian's config); prints it
#   module OUTDIR  build rustnl.ko for the stock kernel into OUTDIR, checked
#                  against the stock kernel (release, rustc_cfg, symbols)
#   vmlinuz        prints the stock kernel image
#   gen-cpio       prints the initramfs writer (built from the source once)
#   run CMD...     run CMD in the chroot (the cache and the tree mounted)
#   dkms-test OUTDIR   dkms add/build/install in the chroot (made a machine of
#                  the kernel's suite); the installed module to OUTDIR/rustnl.ko
#   dkms RELEASE   (dkms.conf's MAKE) on a Debian machine with Debian's kernel
#                  toolchain installed (the compiler the headers' config
#                  names, rustc, rust-src, bindgen, libclang-dev, pahole),
#                  linux-headers-RELEASE and linux-source-X.Y: regenerate the
#                  metadata natively (cache /var/cache/rustnl) and build
#                  kmod/rustnl.ko in this tree
# Environment: STOCK (trixie-backports | sid | forky; default
# trixie-backports), STOCK_RELEASE (trixie-backports: default `uname -r` if it
# is a Debian 7.3 amd64 kernel, else 7.3.4+deb13-amd64; sid/forky: default the
# suite's linux-image-amd64).
# Every step prints its result on stdout and everything else on stderr.
set -euo pipefail
{ # (the whole script is read before it runs: editing it cannot upset a running build)
HERE=$(cd "$(dirname "$0")/.." && pwd)
log() { printf 'stock: %s\n' "$*" >&2; }
# CLEANUP: a cache entry being made (a .tmp dir), removed when a step fails.
CLEANUP=
die() {
    printf 'stock: error: %s\n' "$*" >&2
    [ -z "$CLEANUP" ] || ${SUDO:-} rm -rf "$CLEANUP"
    exit 1
}
# dkms mode: this machine is the target (no chroot, no downloads).
NATIVE=
if [ "${1:-}" = dkms ]; then
    NATIVE=1
    STOCK_RELEASE=${2:?usage: stock.sh dkms RELEASE}
    RUSTNL_CACHE=${RUSTNL_CACHE:-/var/cache/rustnl}
fi
CACHE=${RUSTNL_CACHE:-$HOME/.cache/rustnl}
CACHE=$(mkdir -p "$CACHE" && cd "$CACHE" && pwd)

# The kernel line. HOSTPKGS: the kernel's packages come from the host's apt
# sources (trixie-backports, added and pinned by `make deps`) and its source
# from `make deps`; otherwise all of it comes from apt in the suite's chroot.
# TOOLPKGS: the compiler and libclang the suite built its kernel with
# (check_toolchain compares them with the kernel's own record).
LINE=${STOCK-trixie-backports}
[ -z "$NATIVE" ] || LINE=native
case "$LINE" in
    trixie-backports) SUITE=trixie HOSTPKGS=1 TOOLPKGS=(gcc-14 libclang-19-dev) ;;
    sid|forky)        SUITE=$LINE HOSTPKGS= TOOLPKGS=(gcc-16 libclang-dev) ;;
    native)           SUITE= HOSTPKGS= TOOLPKGS=() ;;
    '') die "STOCK is empty: give trixie-backports (Debian's 7.3 kernel, the default), sid or forky (7.2)" ;;
    *) die "STOCK=$LINE is not a Debian kernel line: trixie-backports (7.3, the default), sid or forky (7.2)" ;;
esac

SUDO=
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || die "not root and no sudo: the chroot needs root"
    SUDO=sudo
fi
export DEBIAN_FRONTEND=noninteractive
SDIR=$CACHE/stock
ROOT=$SDIR/chroot-$SUITE
mkdir -p "$SDIR" "$CACHE/locks"

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
# Debian's kernel toolchain (the suite's, which built its kernel).
CHROOT_PKGS=("${TOOLPKGS[@]}" libc6-dev make flex bison bc libelf-dev libssl-dev python3 perl
             cpio kmod openssl rustc rust-src bindgen pahole xz-utils)
# Inside the chroot the cache and the tree are mounted at their own paths, so
# every path means the same thing inside and out. A private mount namespace
# (unshare -m) takes the mounts away when the command ends.
in_chroot() {  # (CROOT=dir: another root than the suite's, e.g. one being made)
    if [ -n "$NATIVE" ]; then "$@"; return; fi
    $SUDO unshare -m --propagation private /bin/sh -ec '
        root=$1; shift; cache=$1; shift; here=$1; shift
        mount -t proc proc "$root/proc"
        mount --rbind /dev "$root/dev"
        mkdir -p "$root$cache" "$root$here"
        mount --bind "$cache" "$root$cache"
        mount --bind "$here" "$root$here"
        exec chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
             DEBIAN_FRONTEND=noninteractive "$@"' sh "${CROOT:-$ROOT}" "$CACHE" "$HERE" "$@"
}

# The machine's apt settings for its mirror hold in the chroot too (e.g.
# Acquire::Check-Valid-Until "false" where the mirror serves a frozen
# archive whose Release files have expired).
sync_apt_conf() {  # ROOTDIR
    local conf f=$1/etc/apt/apt.conf.d/99rustnl-host
    conf=$(apt-config dump 2>/dev/null | grep -E '^Acquire::Check-Valid-Until ' || true)
    if [ -n "$conf" ]; then
        [ "$(cat "$f" 2>/dev/null)" = "$conf" ] || printf '%s\n' "$conf" | $SUDO tee "$f" >/dev/null
    else
        $SUDO rm -f "$f"
    fi
}
# A new chroot is made in $ROOT.tmp (debootstrap, then the toolchain) and
# renamed at the end: a failure leaves no half-made chroot behind.
ensure_chroot() {
    [ -z "$NATIVE" ] || return 0
    exec 8>"$CACHE/locks/stock-chroot.lock"; flock 8
    if [ ! -f "$ROOT/.rustnl-debootstrap" ]; then
        host_pkgs debootstrap debian-archive-keyring
        local uri; uri=$(debian_uri)
        [ -n "$uri" ] || die "cannot find the Debian mirror URI in the apt sources"
        # (a debootstrap older than the suite knows it by sid's script)
        local script=/usr/share/debootstrap/scripts/$SUITE tmp=$ROOT.tmp
        [ -e "$script" ] || script=/usr/share/debootstrap/scripts/sid
        log "debootstrap $SUITE into $ROOT (from the machine's Debian mirror; a few minutes)"
        local t0=$SECONDS
        $SUDO rm -rf "$ROOT" "$tmp"
        $SUDO debootstrap --variant=minbase "$SUITE" "$tmp" "$uri" "$script" >"$SDIR/debootstrap-$SUITE.log" 2>&1 \
            || { $SUDO rm -rf "$tmp"; die "debootstrap $SUITE failed: $(grep -m1 -E '^E:' "$SDIR/debootstrap-$SUITE.log" || tail -n1 "$SDIR/debootstrap-$SUITE.log") (see $SDIR/debootstrap-$SUITE.log)"; }
        sync_apt_conf "$tmp"
        log "installing the kernel toolchain in the $SUITE chroot: ${CHROOT_PKGS[*]}"
        CROOT=$tmp in_chroot apt-get install -y -qq --no-install-recommends "${CHROOT_PKGS[@]}" >"$SDIR/chroot-apt-$SUITE.log" 2>&1 \
            || { $SUDO rm -rf "$tmp"; die "apt-get install in the new $SUITE chroot failed: $(grep -m1 '^E:' "$SDIR/chroot-apt-$SUITE.log" || true) (see $SDIR/chroot-apt-$SUITE.log)"; }
        $SUDO touch "$tmp/.rustnl-debootstrap"
        $SUDO mv "$tmp" "$ROOT"
        log "chroot $SUITE made in $((SECONDS - t0))s"
    fi
    sync_apt_conf "$ROOT"
    local missing=() p have
    have=$(in_chroot dpkg-query -W -f='${Package} ${db:Status-Status}\n' "${CHROOT_PKGS[@]}" 2>/dev/null || true)
    for p in "${CHROOT_PKGS[@]}"; do
        grep -qx "$p installed" <<<"$have" || missing+=("$p")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        log "installing in the $SUITE chroot: ${missing[*]}"
        in_chroot apt-get update -qq >&2 || die "apt-get update in the $SUITE chroot failed"
        in_chroot apt-get install -y -qq --no-install-recommends "${missing[@]}" >"$SDIR/chroot-apt-$SUITE.log" 2>&1 \
            || die "apt-get install in the $SUITE chroot failed: $(grep -m1 '^E:' "$SDIR/chroot-apt-$SUITE.log" || true) (see $SDIR/chroot-apt-$SUITE.log)"
    fi
    flock -u 8
}
# --- the stock kernel's packages ---------------------------------------------------
# The release. trixie-backports: STOCK_RELEASE, else `uname -r` when it is a
# Debian 7.3 amd64 kernel, else 7.3.4+deb13-amd64. sid/forky: STOCK_RELEASE,
# else the one fetched before ($SDIR/release-$SUITE: warm runs keep their
# kernel; RUSTNL_REFRESH_STOCK=1 looks again), else what the suite's
# linux-image-amd64 depends on today (after apt-get update in the chroot).
RELEASE= ABI= PKGDIR= HDR=
set_release() {
    [ -z "$RELEASE" ] || return 0
    if [ -n "${STOCK_RELEASE:-}" ]; then
        RELEASE=$STOCK_RELEASE
    elif [ -n "$HOSTPKGS" ]; then
        case "$(uname -r)" in 7.3.*+deb13-amd64) RELEASE=$(uname -r) ;; *) RELEASE=7.3.4+deb13-amd64 ;; esac
    elif [ -f "$SDIR/release-$SUITE" ] && [ -z "${RUSTNL_REFRESH_STOCK:-}" ]; then
        RELEASE=$(cat "$SDIR/release-$SUITE")
    else
        ensure_chroot
        in_chroot apt-get update -qq >&2 || die "apt-get update in the $SUITE chroot failed"
        RELEASE=$(in_chroot apt-cache depends linux-image-amd64 2>/dev/null \
            | sed -n 's/^ *Depends: linux-image-\([0-9].*\)$/\1/p' | head -n1)
        [ -n "$RELEASE" ] || die "the $SUITE mirror has no kernel: no linux-image-amd64 (or its linux-image-<release>) in the chroot's apt lists"
    fi
    case "$RELEASE" in
        *+deb[0-9]*-*) ABI=${RELEASE%-*} ;;   # 7.3.4+deb13-amd64 -> 7.3.4+deb13
        *) die "STOCK_RELEASE=$RELEASE is not a Debian kernel release (like 7.3.4+deb13-amd64)" ;;
    esac
    if [ -n "$HOSTPKGS" ]; then
        case "$RELEASE" in *+deb13-*) ;; *) die "STOCK_RELEASE=$RELEASE is not a trixie kernel release (+deb13): STOCK=sid or forky take +deb14 ones" ;; esac
        PKGDIR=$SDIR/pkgs-$RELEASE
    else
        PKGDIR=$SDIR/pkgs-$SUITE-$RELEASE
    fi
    HDR=$PKGDIR/root/usr/src/linux-headers-$RELEASE
    [ -z "$NATIVE" ] || HDR=/usr/src/linux-headers-$RELEASE
}
[ -z "$NATIVE" ] || set_release
# A package's candidate version: the host's apt (HOSTPKGS) or the chroot's.
candidate() {
    if [ -n "$HOSTPKGS" ]; then apt-cache policy "$1" 2>/dev/null
    else in_chroot apt-cache policy "$1" 2>/dev/null; fi | awk '/Candidate:/{print $2}'
}
apt_update() {
    if [ -n "$HOSTPKGS" ]; then $SUDO apt-get update -qq || true
    else in_chroot apt-get update -qq >&2 || true; fi
}
# dpkg-deb of the suite that made the packages (a newer suite's may use a
# compression the host's dpkg-deb lacks).
deb_run() { if [ -n "$HOSTPKGS" ]; then "$@"; else in_chroot "$@"; fi; }
# Downloaded into $PKGDIR.tmp, unpacked (dpkg-deb of the suite), renamed to
# $PKGDIR at the end. sid/forky: the kernel's source package (linux-source-X.Y
# of the headers' very version) too, unpacked into $PKGDIR/src.
ensure_fetch() {
    set_release
    if [ -n "$NATIVE" ]; then
        [ -f "$HDR/.config" ] && [ -f "$HDR/Module.symvers" ] \
            || die "no headers for $RELEASE in $HDR: install linux-headers-$RELEASE"
        return 0
    fi
    [ -n "$HOSTPKGS" ] || ensure_chroot
    exec 7>"$CACHE/locks/stock-fetch.lock"; flock 7
    if [ -f "$PKGDIR/.rustnl-complete" ]; then flock -u 7; return 0; fi
    local pkgs=("linux-headers-$RELEASE" "linux-headers-$ABI-common" "linux-kbuild-$ABI") p v updated=
    # The image: Debian 7.x splits linux-image-* into linux-binary-* (vmlinuz)
    # and linux-modules-*; older releases ship vmlinuz in linux-image-* itself.
    v=$(candidate "linux-binary-$RELEASE")
    if [ -z "$v" ] || [ "$v" = "(none)" ]; then apt_update; updated=1; v=$(candidate "linux-binary-$RELEASE"); fi
    if [ -n "$v" ] && [ "$v" != "(none)" ]; then pkgs+=("linux-binary-$RELEASE"); else pkgs+=("linux-image-$RELEASE"); fi
    local where="the apt sources: the stock kernel $RELEASE needs Debian's trixie-backports suite (run \`make deps\`, which adds it)"
    [ -n "$HOSTPKGS" ] || where="the $SUITE mirror's lists (the $SUITE chroot): STOCK_RELEASE=$RELEASE is not (or no longer) in $SUITE; RUSTNL_REFRESH_STOCK=1 takes the current one"
    local tmp=$PKGDIR.tmp
    $SUDO rm -rf "$tmp"; mkdir -p "$tmp/dl" "$tmp/root" "$tmp/debs"; chmod 0777 "$tmp/dl"   # apt downloads as _apt
    for p in "${pkgs[@]}"; do
        v=$(candidate "$p")
        if { [ -z "$v" ] || [ "$v" = "(none)" ]; } && [ -z "$updated" ]; then
            apt_update; updated=1; v=$(candidate "$p")
        fi
        [ -n "$v" ] && [ "$v" != "(none)" ] || { $SUDO rm -rf "$tmp"; die "no package $p in $where"; }
        log "downloading $p $v"
        if [ -n "$HOSTPKGS" ]; then (cd "$tmp/dl" && apt-get download -qq "$p=$v" 2>/dev/null)
        else in_chroot sh -c 'cd "$1" && apt-get download -qq "$2" 2>/dev/null' sh "$tmp/dl" "$p=$v"; fi \
            || { $SUDO rm -rf "$tmp"; die "apt-get download $p=$v failed"; }
    done
    local hdrver; hdrver=$(deb_run dpkg-deb -f "$(ls "$tmp"/dl/linux-headers-"$RELEASE"_*.deb)" Version)
    local srcpkg; srcpkg=linux-source-$(echo "$RELEASE" | cut -d. -f1-2)   # 7.2.13+deb14-amd64 -> linux-source-7.2
    if [ -z "$HOSTPKGS" ]; then
        # the kernel's source, of the headers' version exactly
        log "downloading $srcpkg $hdrver"
        in_chroot sh -c 'cd "$1" && apt-get download -qq "$2" 2>/dev/null' sh "$tmp/dl" "$srcpkg=$hdrver" \
            || { $SUDO rm -rf "$tmp"; die "no source for $RELEASE: $srcpkg $hdrver (the headers' version) is not in the $SUITE mirror"; }
    fi
    for p in "$tmp"/dl/*.deb; do
        case "${p##*/}" in linux-source-*) continue ;; esac
        deb_run dpkg-deb -x "$p" "$tmp/root" || { $SUDO rm -rf "$tmp"; die "cannot unpack ${p##*/}"; }
    done
    if [ -z "$HOSTPKGS" ]; then
        log "unpacking $srcpkg $hdrver"
        mkdir -p "$tmp/src"
        in_chroot sh -c 'dpkg-deb --fsys-tarfile "$1" | tar -xO --wildcards "./usr/src/linux-source-*.tar.xz" | tar -xJ -C "$2" --strip-components=1' \
            sh "$(ls "$tmp"/dl/"$srcpkg"_*.deb)" "$tmp/src" && [ -f "$tmp/src/Makefile" ] \
            || { $SUDO rm -rf "$tmp"; die "cannot unpack $srcpkg $hdrver"; }
        echo "$hdrver" > "$tmp/src/.rustnl-version"
    fi
    mv "$tmp"/dl/*.deb "$tmp/debs/"; rmdir "$tmp/dl"
    local h=$tmp/root/usr/src/linux-headers-$RELEASE
    [ -f "$h/Module.symvers" ] && [ -f "$h/.config" ] || { $SUDO rm -rf "$tmp"; die "the headers package for $RELEASE has no Module.symvers or .config"; }
    PKGDIR=$tmp stock_vmlinuz >/dev/null || { $SUDO rm -rf "$tmp"; die "no vmlinuz for $RELEASE in ${pkgs[*]: -1}"; }
    date -u +%FT%TZ > "$tmp/.rustnl-complete"
    $SUDO rm -rf "$PKGDIR"; mv "$tmp" "$PKGDIR"
    [ -n "$HOSTPKGS" ] || echo "$RELEASE" > "$SDIR/release-$SUITE"
    flock -u 7
}
stock_vmlinuz() {  # 7.x: /usr/lib/modules/<release>/vmlinuz; older: /boot/vmlinuz-<release>
    local f
    for f in "$PKGDIR/root/usr/lib/modules/$RELEASE/vmlinuz" "$PKGDIR/root/boot/vmlinuz-$RELEASE"; do
        [ -f "$f" ] && { echo "$f"; return 0; }
    done
    return 1
}

# The kernel's C compiler, as its config records it (CONFIG_CC_VERSION_TEXT:
# "x86_64-linux-gnu-gcc-14 (Debian 14.2.0-19) 14.2.0"), and its package.
kernel_cc() { sed -n 's/^CONFIG_CC_VERSION_TEXT="\([^ ]*\) .*"$/\1/p' "$HDR/.config"; }
# Toolchain versions, one line each (part of the metadata key).
toolchain_versions() {
    local cc; cc=$(kernel_cc)
    # (dkms: the newest libclang-N-dev installed; the kernel's check_exports
    # tells whether it was the right one)
    local clang=${TOOLPKGS[1]:-$(dpkg-query -W -f='${Package} ${db:Status-Status}\n' 'libclang-[0-9]*-dev' 2>/dev/null \
        | awk '$2=="installed"{print $1}' | sort -V | tail -n1)}
    in_chroot sh -c 'rustc --version; bindgen --version; "$1" --version | head -n1;
        dpkg-query -W -f="\${Package} \${Version}\n" rustc rust-src "$2" pahole' sh "${cc#x86_64-linux-gnu-}" "$clang"
}

# --- the Rust metadata -------------------------------------------------------------
# Debian's make variables for its kernel build (the headers' .kernelvariables;
# CC: the compiler the kernel's config names). Set by set_kvars.
KVARS=()
set_kvars() {
    local cc; cc=$(kernel_cc)
    [ -n "$cc" ] || die "no CONFIG_CC_VERSION_TEXT in $HDR/.config: cannot tell the kernel's C compiler"
    KVARS=(ARCH=x86 CROSS_COMPILE=x86_64-linux-gnu- CC="$cc" KERNELRELEASE="$RELEASE")
}
# The kernel source: trixie-backports: `make deps`'s linux-source-7.3;
# sid/forky: the one ensure_fetch unpacked; dkms: native_source.
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
            CC) local cc; cc=$(kernel_cc)
                have=$(in_chroot "$cc" --version 2>/dev/null | head -n1 || true); have=${have:-no $cc} ;;
        esac
        [ -z "$want" ] || [ "$have" = "$want" ] \
            || die "toolchain mismatch: the kernel was built with '$want', here ${SUITE:+(the $SUITE chroot)}: '$have' (the toolchain of the suite that built the kernel is needed: its ${TOOLPKGS[0]:-gcc}, rustc + rust-src, bindgen)"
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
# runs niced: the cores are shared. RUSTNL_CPU_LOCK_HELD=1: the caller holds
# it already (`flock $RUSTNL_CACHE/locks/cpu-heavy.lock env
# RUSTNL_CPU_LOCK_HELD=1 make ...`, to keep a whole benchmark to itself).
cpu_heavy() {
    (
        local t0=$SECONDS
        [ -n "${RUSTNL_CPU_LOCK_HELD:-}" ] || flock 5
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
        printf '%s\n' "$missing" > "$SDIR/missing-exports-$RELEASE.txt"
        die "symbol mismatch: $(printf '%s\n' "$missing" | wc -l) of $n Rust exports of the regenerated crates are not in the stock Module.symvers, e.g. $(printf '%s\n' "$missing" | head -n1) (the toolchain differs from Debian's; list: $SDIR/missing-exports-$RELEASE.txt)"
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
    set_kvars
    local srcver hdrver mpfx=$SDIR/meta-$RELEASE
    if [ -n "$NATIVE" ]; then
        native_source; srcver=$SRCVER; hdrver=$HDRVER
    elif [ -n "$HOSTPKGS" ]; then
        [ -f "$KSRC/Makefile" ] && [ -f "$CACHE/src/VERSION" ] \
            || die "no kernel source in $KSRC: run \`make deps\` (it unpacks Debian's linux-source-7.3)"
        srcver=$(cat "$CACHE/src/VERSION")
        hdrver=$(dpkg-deb -f "$(ls "$PKGDIR"/debs/linux-headers-"$RELEASE"_*.deb)" Version)
    else
        KSRC=$PKGDIR/src mpfx=$SDIR/meta-$SUITE-$RELEASE
        srcver=$(cat "$KSRC/.rustnl-version")
        hdrver=$(in_chroot dpkg-deb -f "$(ls "$PKGDIR"/debs/linux-headers-"$RELEASE"_*.deb)" Version)
    fi
    [ "$srcver" = "$hdrver" ] \
        || die "no source for $RELEASE: $KSRC is linux-source $srcver, the stock kernel is $hdrver (RUSTNL_REFRESH_SRC=1 make deps fetches the current linux-source)"
    local key
    key=$( { echo "$RELEASE $srcver"; cat "$HDR/.config"; toolchain_versions; } | sha256sum | cut -c1-12)
    # Built in $META.tmp, renamed at the end (the O= tree records no path of
    # its own: the module builds name it as O=).
    local final=$mpfx-$key
    exec 6>"$CACHE/locks/stock-meta.lock"; flock 6
    if [ -f "$final/.rustnl-complete" ]; then
        META=$final
        log "Rust metadata cached: $META"
        flock -u 6; return 0
    fi
    META=$final.tmp
    $SUDO rm -rf "$final" "$META"; mkdir -p "$META"
    CLEANUP=$META
    cp "$HDR/.config" "$META/.config"
    # the log outside the .tmp tree: kept when the build fails
    local blog=$mpfx.log
    log "regenerating the Rust metadata for $RELEASE in $META (Debian's config and toolchain)"
    local t0=$SECONDS
    kmake_logged "$blog" "olddefconfig" O="$META" olddefconfig
    cmp -s "$HDR/.config" "$META/.config" || {
        local d; d=$(diff "$HDR/.config" "$META/.config" | grep '^[<>]' | head -n 2 | paste -sd' ' || true)
        die "config mismatch: olddefconfig in the chroot changed Debian's config: $d"; }
    # `modules_prepare` is what out-of-tree modules need: the host tools
    # (modpost, objtool), the generated headers, scripts/module.lds and,
    # with CONFIG_RUST, rust/ (core, the kernel crates' .rmeta, the proc
    # macros). Held under the machine's CPU lock, niced.
    log "building modules_prepare (host tools, generated headers, rust/): waits for the CPU lock"
    cpu_heavy kmake_to "$blog" O="$META" -j"$(nproc)" modules_prepare \
        || fail_log "$blog" "modules_prepare failed"
    check_stock_match "$META"
    check_exports "$META"
    # modpost resolves against the stock exports; pahole takes the module BTF
    # base from the stock vmlinux (the headers ship it for that).
    cp "$HDR/Module.symvers" "$META/Module.symvers"
    cp "$HDR/vmlinux" "$META/vmlinux"
    printf '%s (%ss)\n' "$(date -u +%FT%TZ)" "$((SECONDS - t0))" > "$META/.rustnl-complete"
    mv "$META" "$final"; META=$final CLEANUP=
    log "Rust metadata for $RELEASE ready in $((SECONDS - t0))s"
    for old in "$mpfx"-*; do
        [ "$old" != "$META" ] && [ -d "$old" ] && { log "removing stale $old"; rm -rf "$old"; }
    done
    flock -u 6
}

# --- DKMS, proved in the chroot ------------------------------------------------------
# The chroot plays a Debian machine of the kernel's suite: for
# trixie-backports a trixie machine with trixie-backports added (pinned to
# 100, as scripts/deps.sh does here), for sid/forky a machine of that suite;
# dkms + linux-headers-RELEASE + linux-source-X.Y installed by apt, the DKMS tree from `install.sh
# dkms-src`, then `dkms add / build / install -k RELEASE` exactly as a user
# runs them (its own cache, /var/cache/rustnl in the chroot: a cold build).
# The installed module is copied (uncompressed) to OUTDIR/rustnl.ko.
dkms_test() {  # OUTDIR
    local outdir; outdir=$(mkdir -p "$1" && cd "$1" && pwd)
    ensure_chroot; set_release
    local uri; uri=$(debian_uri)
    [ -n "$uri" ] || die "cannot find the Debian mirror URI in the apt sources"
    if [ -n "$HOSTPKGS" ] && [ ! -f "$ROOT/etc/apt/sources.list.d/$SUITE-backports.sources" ]; then
        printf 'Types: deb\nURIs: %s\nSuites: %s-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
            "$uri" "$SUITE" | $SUDO tee "$ROOT/etc/apt/sources.list.d/$SUITE-backports.sources" >/dev/null
        printf 'Package: *\nPin: release n=%s-backports\nPin-Priority: 100\n' "$SUITE" \
            | $SUDO tee "$ROOT/etc/apt/preferences.d/$SUITE-backports" >/dev/null
        in_chroot apt-get update -qq >&2 || die "apt-get update in the chroot failed"
    fi
    local srcpkg; srcpkg=linux-source-$(echo "$RELEASE" | cut -d. -f1-2)
    [ -n "$HOSTPKGS" ] || in_chroot apt-get update -qq >&2 || die "apt-get update in the $SUITE chroot failed"
    log "installing dkms, linux-headers-$RELEASE, $srcpkg in the chroot"
    in_chroot apt-get install -y -qq --no-install-recommends dkms "linux-headers-$RELEASE" "$srcpkg" >"$SDIR/chroot-dkms-apt.log" 2>&1 \
        || die "apt-get install dkms linux-headers-$RELEASE $srcpkg in the chroot failed (see $SDIR/chroot-dkms-apt.log)"
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
# without build products, into TO: times kept and TO's earlier build kept, so
# kbuild rebuilds only what changed (7.2's bindgen run and its 6 MB of
# bindings take a minute); sources gone from FROM are removed from TO.
module_sources() { find Kbuild kmod shared/src -type f \( -name Kbuild -o -name '*.rs' -o -name '*.c' -o -name '*.h' \) \
        ! -name '*.mod.c' ! -name '.*' ! -name 'compat_bindings.rs' ! -name 'compat_layout.rs' ! -name 'compat_helper.h' | sort; }
copy_module_source() {  # FROM TO
    mkdir -p "$2"
    (cd "$1" && module_sources | xargs -r cp -p --parents -t "$2/")
    local gone
    gone=$(comm -13 <(cd "$1" && module_sources) <(cd "$2" && module_sources 2>/dev/null || true))
    [ -z "$gone" ] || (cd "$2" && printf '%s\n' "$gone" | xargs -r rm -f)
}
build_module() {  # OUTDIR
    local outdir; outdir=$(mkdir -p "$1" && cd "$1" && pwd)
    ensure_metadata
    # Kbuild builds in the module's directory: a copy, so that kmod/ (the
    # test kernel's build) never sees objects of the stock build.
    local src=$outdir/src
    copy_module_source "$HERE" "$src"
    # The C reference module (tests/bench) too: the bench smoke test and
    # `make bench` load both.
    local csrc=$outdir/src-c
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
    in_chroot sh -c 'rustc --version; bindgen --version; dpkg-query -W -f="\${Package} \${Version}\n" "$@"' sh "${CHROOT_PKGS[@]}" >&2
    echo "$ROOT" ;;
release)
    set_release; echo "$RELEASE" ;;
fetch)
    ensure_fetch; echo "$PKGDIR/root" ;;
vmlinuz)
    ensure_fetch; stock_vmlinuz ;;
gen-cpio)   # the initramfs writer for scripts/vm.sh (the kernel's host tool,
            # from `make deps`'s source: any kernel's initramfs format)
    [ -f "$KSRC/usr/gen_init_cpio.c" ] || die "no kernel source in $KSRC: run \`make deps\`"
    if [ ! -x "$SDIR/gen_init_cpio" ]; then
        cc -O2 -o "$SDIR/gen_init_cpio.tmp" "$KSRC/usr/gen_init_cpio.c" && mv "$SDIR/gen_init_cpio.tmp" "$SDIR/gen_init_cpio" \
            || die "cannot build gen_init_cpio"
    fi
    echo "$SDIR/gen_init_cpio" ;;
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
    die "usage: [STOCK=trixie-backports|sid|forky] stock.sh chroot|release|fetch|metadata|module OUTDIR|vmlinuz|gen-cpio|run CMD...|dkms-test OUTDIR|dkms RELEASE" ;;
esac
exit
}

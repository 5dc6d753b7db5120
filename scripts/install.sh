#!/usr/bin/env bash
# make install / make dkms-src (issue 12).
#
#   scripts/install.sh module KO BIN
#       modules_install semantics: KO goes to
#       $INSTALL_MOD_PATH/lib/modules/<release>/$INSTALL_MOD_DIR/rustnl.ko
#       (release from the module's vermagic; INSTALL_MOD_DIR default
#       `updates`, as for any external module), then depmod for that release
#       (-b $INSTALL_MOD_PATH when set); BIN (the rustnl CLI) goes to
#       $DESTDIR$PREFIX/bin (PREFIX default /usr/local).
#   scripts/install.sh dkms-src
#       the DKMS source tree: $DESTDIR/usr/src/rustnl-<version>/ (dkms.conf,
#       Kbuild, kmod/, the shared sources, scripts/stock.sh and lib.sh).
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
rustnl_script install
PATH=$PATH:/usr/sbin:/sbin
SUDO=; [ "$(id -u)" -eq 0 ] || SUDO=sudo

case "${1:-}" in
module)
    ko=${2:?KO} bin=${3:?BIN}
    [ -f "$ko" ] || die "no module $ko (build it first: make stock-module, or make module KDIR=...)"
    [ -x "$bin" ] || die "no CLI $bin (make user builds it)"
    if ! command -v modinfo >/dev/null || ! command -v depmod >/dev/null; then
        log "installing kmod (modinfo, depmod)"
        ${SUDO:-} apt-get install -y -qq --no-install-recommends kmod >/dev/null || die "modinfo/depmod missing: install kmod"
    fi
    release=$(modinfo -F vermagic "$ko" | awk '{print $1}')
    [ -n "$release" ] || die "$ko has no vermagic: not a kernel module"
    dir=${INSTALL_MOD_PATH:-}/lib/modules/$release/${INSTALL_MOD_DIR:-updates}
    install -D -m 0644 "$ko" "$dir/rustnl.ko"
    log "module: $dir/rustnl.ko (kernel $release)"
    if [ -d "${INSTALL_MOD_PATH:-}/lib/modules/$release/kernel" ] || [ -n "${INSTALL_MOD_PATH:-}" ]; then
        depmod ${INSTALL_MOD_PATH:+-b "$INSTALL_MOD_PATH"} "$release" || die "depmod $release failed"
        log "depmod $release${INSTALL_MOD_PATH:+ (-b $INSTALL_MOD_PATH)}: modprobe rustnl works"
        modinfo -F alias "$ko" | grep -qx 'net-pf-16-proto-31' \
            && log "alias net-pf-16-proto-31: the first client's socket() loads the module"
    else
        log "kernel $release is not installed here (no /lib/modules/$release/kernel): depmod skipped"
    fi
    prefix=${PREFIX:-/usr/local}
    install -D -m 0755 "$bin" "${DESTDIR:-}$prefix/bin/rustnl"
    log "CLI: ${DESTDIR:-}$prefix/bin/rustnl" ;;
dkms-src)
    ver=$(sed -n 's/^PACKAGE_VERSION="\(.*\)"$/\1/p' "$HERE/dkms.conf")
    dest=${DESTDIR:-}/usr/src/rustnl-$ver
    rm -rf "$dest"; mkdir -p "$dest/scripts"
    (cd "$HERE" && find Kbuild kmod shared/src -type f \( -name Kbuild -o -name '*.rs' -o -name '*.c' -o -name '*.h' \) \
        ! -name '*.mod.c' ! -name '.*' ! -name compat_bindings.rs ! -name compat_layout.rs ! -name compat_helper.h -exec cp --parents {} "$dest/" \;)
    cp "$HERE/dkms.conf" "$dest/"
    cp "$HERE/scripts/stock.sh" "$HERE/scripts/lib.sh" "$dest/scripts/"
    log "DKMS source: $dest (next: dkms add rustnl/$ver && dkms install rustnl/$ver)"
    echo "$dest" ;;
*)
    die "usage: install.sh module KO BIN | dkms-src" ;;
esac

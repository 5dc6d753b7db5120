#!/usr/bin/env bash
# rustnl toolchain bootstrap (`make deps`).
#
# Idempotent: every step checks first and only installs what is missing, and
# says what it installs. Provides:
#   - Debian build/test packages (clang-19 toolchain, QEMU, busybox-static, ...)
#   - rust-src for the active rustup toolchain (fallback: Debian rustc-web +
#     rust-web-src)
#   - bindgen-cli (pinned) from the crates registry
#   - the Linux 7.3 source from Debian's linux-source-7.3 (trixie-backports),
#     unpacked under $RUSTNL_CACHE/src
# and writes $RUSTNL_CACHE/toolchain.env, which the Makefile includes.
set -euo pipefail

BINDGEN_VERSION=${BINDGEN_VERSION:-0.73.2}
KSRC_PKG=${KSRC_PKG:-linux-source-7.3}
BACKPORTS_SUITE=trixie-backports

# debootstrap makes the chroots of the stock kernel lines (scripts/stock.sh),
# installed here so that no apt runs on the host while make test fetches
# them in the background.
# python3 (+ yaml, jsonschema) and iproute2 also serve the guest: it runs the
# host's own /usr/bin/python3 (the kernel's YNL CLI) and genl through
# `chroot /host` (scripts/vm.sh exports the host's / read-only).
APT_PKGS=(make gcc libc6-dev flex bison bc libelf-dev libssl-dev cpio xz-utils
          python3 python3-yaml python3-jsonschema iproute2 perl clang-19 lld-19 llvm-19 libclang-19-dev
          qemu-system-x86 busybox-static debootstrap debian-archive-keyring)

# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
rustnl_script deps

SUDO=
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || die "not root and no sudo: cannot install packages"
    SUDO=sudo
fi
export DEBIAN_FRONTEND=noninteractive

mkdir -p "$CACHE"

is_installed() {
    [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" = installed ]
}

APT_UPDATED=
apt_update() {
    if [ -z "$APT_UPDATED" ]; then
        log "apt-get update"
        $SUDO apt-get update -qq || die "apt-get update failed"
        APT_UPDATED=1
    fi
}

# --- 1. Debian packages -------------------------------------------------------
missing=()
for p in "${APT_PKGS[@]}"; do is_installed "$p" || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
    apt_update
    log "installing Debian packages: ${missing[*]}"
    $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
        || die "apt-get install ${missing[*]} failed"
else
    log "Debian packages: all present"
fi

# --- 2. Rust: rust-src (or Debian rustc-web fallback) -----------------------
KRUSTC=rustc
RUST_SOURCE=
if command -v rustup >/dev/null 2>&1; then
    if rustup component list --installed 2>/dev/null | grep -q '^rust-src'; then
        RUST_SOURCE="rustup ($(rustc --version)) + rust-src (present)"
    elif log "installing rustup component rust-src" && rustup component add rust-src >&2; then
        RUST_SOURCE="rustup ($(rustc --version)) + rust-src (installed now)"
    fi
fi
if [ -z "$RUST_SOURCE" ]; then
    log "rustup rust-src unavailable: falling back to Debian rustc-web + rust-web-src"
    for p in rustc-web rust-web-src; do
        is_installed "$p" || { apt_update; $SUDO apt-get install -y -qq "$p" >/dev/null || die "cannot install $p"; }
    done
    KRUSTC=$(dpkg -L rustc-web | grep -E '/bin/rustc(-web)?$' | head -n1)
    [ -x "$KRUSTC" ] || die "rustc-web installed but no rustc binary found"
    RUST_SOURCE="Debian rustc-web ($("$KRUSTC" --version))"
fi
log "kernel Rust toolchain: $RUST_SOURCE"

# --- 3. bindgen-cli (pinned) ---------------------------------------------------
export PATH="$HOME/.cargo/bin:$PATH"
have_bg=$(bindgen --version 2>/dev/null | awk '{print $2}' || true)
if [ "$have_bg" != "$BINDGEN_VERSION" ]; then
    log "installing bindgen-cli $BINDGEN_VERSION (found: ${have_bg:-none}); takes a few minutes"
    cargo install --locked --quiet bindgen-cli --version "=$BINDGEN_VERSION" \
        || die "cargo install bindgen-cli $BINDGEN_VERSION failed"
else
    log "bindgen-cli $BINDGEN_VERSION: present"
fi

# --- 4. Linux 7.3 source from trixie-backports ------------------------------
# The apt source entry uses the same URI as the machine's existing Debian entry
# (read here at run time; no host name is written into the repository).

KSRC_LIST=/etc/apt/sources.list.d/rustnl-$BACKPORTS_SUITE.sources
KSRC_PIN=/etc/apt/preferences.d/rustnl-$BACKPORTS_SUITE
if [ ! -f "$KSRC_LIST" ]; then
    uri=$(debian_uri)
    [ -n "$uri" ] || die "cannot find the Debian mirror URI in the apt sources"
    log "adding apt suite $BACKPORTS_SUITE (pinned to 100) from the machine's Debian mirror"
    $SUDO tee "$KSRC_LIST" >/dev/null <<SRC
Types: deb
URIs: $uri
Suites: $BACKPORTS_SUITE
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
    APT_UPDATED=
fi
if [ ! -f "$KSRC_PIN" ]; then
    $SUDO tee "$KSRC_PIN" >/dev/null <<PIN
# rustnl: only linux-source-7.3 is fetched from here, never upgrades.
Package: *
Pin: release n=$BACKPORTS_SUITE
Pin-Priority: 100
PIN
fi

SRCDIR=$CACHE/src
mkdir -p "$SRCDIR"
# The candidate version (needs the suite in apt's lists).
kver_candidate() { apt-cache policy "$KSRC_PKG" 2>/dev/null | awk '/Candidate:/{print $2}'; }
current=$(cat "$SRCDIR/VERSION" 2>/dev/null || true)
if [ -n "$current" ] && [ -f "$SRCDIR/linux/Makefile" ] && [ -z "${RUSTNL_REFRESH_SRC:-}" ]; then
    log "$KSRC_PKG $current: present in $SRCDIR/linux"
else
    cand=$(kver_candidate)
    if [ -z "$cand" ] || [ "$cand" = "(none)" ]; then apt_update; cand=$(kver_candidate); fi
    [ -n "$cand" ] && [ "$cand" != "(none)" ] || die "$KSRC_PKG not found in $BACKPORTS_SUITE"
    log "downloading $KSRC_PKG $cand"
    dl=$(mktemp -d "$CACHE/dl.XXXXXX"); chmod 0777 "$dl"  # apt downloads as _apt
    (cd "$dl" && apt-get download -qq "$KSRC_PKG=$cand") || die "apt-get download $KSRC_PKG failed"
    rm -rf "$SRCDIR/linux" "$SRCDIR/linux.tmp"
    mkdir -p "$SRCDIR/linux.tmp"
    log "unpacking $KSRC_PKG $cand into $SRCDIR/linux"
    dpkg-deb --fsys-tarfile "$dl"/*.deb | tar -xO --wildcards './usr/src/linux-source-*.tar.xz' \
        | tar -xJ -C "$SRCDIR/linux.tmp" --strip-components=1
    [ -f "$SRCDIR/linux.tmp/Makefile" ] || die "unpacked tree has no Makefile"
    mv "$SRCDIR/linux.tmp" "$SRCDIR/linux"
    rm -rf "$dl"
    echo "$cand" > "$SRCDIR/VERSION"
fi
KSRC_VERSION=$(cat "$SRCDIR/VERSION")

# --- 5. toolchain.env ------------------------------------------------------------
# KEY='value': a form bash sources and make includes (scripts/lib.sh).
q() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"; }
cat > "$CACHE/toolchain.env.tmp" <<ENV
# written by scripts/deps.sh; included by the Makefile, sourced by the scripts
KSRC_VERSION=$(q "$KSRC_VERSION")
KSRC=$(q "$SRCDIR/linux")
KRUSTC=$(q "$KRUSTC")
RUST_SOURCE=$(q "$RUST_SOURCE")
BINDGEN_VERSION=$(q "$BINDGEN_VERSION")
ENV
mv "$CACHE/toolchain.env.tmp" "$CACHE/toolchain.env"
log "ready: kernel source $KSRC_PKG $KSRC_VERSION, $(clang-19 --version | head -n1), bindgen $BINDGEN_VERSION"

# Shared helpers of the rustnl scripts (sourced, not run).
#
# The preamble of a script: `. "$(dirname "$0")/lib.sh"` then
# `rustnl_script NAME`: HERE (the checkout), CACHE ($RUSTNL_CACHE, default
# ~/.cache/rustnl), and log / die that prefix their line with NAME.
# (A script with log / die of its own, such as stock.sh, sources lib.sh
# without calling rustnl_script.)
rustnl_script() {
    RUSTNL_SCRIPT=$1
    HERE=$(cd "$(dirname "${BASH_SOURCE[1]}")/.." && pwd)
    CACHE=${RUSTNL_CACHE:-$HOME/.cache/rustnl}
    log() { printf '%s: %s\n' "$RUSTNL_SCRIPT" "$*" >&2; }
    die() { printf '%s: error: %s\n' "$RUSTNL_SCRIPT" "$*" >&2; exit 1; }
}

# The toolchain facts `make deps` found (KSRC, KSRC_VERSION, KRUSTC,
# RUST_SOURCE, BINDGEN_VERSION), from $CACHE/toolchain.env: lines
# KEY='value', which bash sources and the Makefile includes as they are
# (make keeps the quotes, which the recipe's shell then removes).
load_toolchain_env() {
    [ -f "$CACHE/toolchain.env" ] || die "no $CACHE/toolchain.env: run make deps"
    # shellcheck disable=SC1091
    . "$CACHE/toolchain.env"
}

# The machine's Debian mirror URI, read from its apt sources at run time, so
# that no host name is ever written into the repository: the first deb822
# stanza of debian.sources whose suite is a plain release (not -security),
# else the first non-security `deb` line of sources.list.
debian_uri() {
    local f uri=
    f=/etc/apt/sources.list.d/debian.sources
    if [ -r "$f" ]; then
        # deb822: first stanza whose Suites has a plain release (not -security)
        uri=$(awk 'BEGIN{RS=""; FS="\n"}
                   { u=""; s="";
                     for(i=1;i<=NF;i++){ if($i ~ /^URIs:/){sub(/^URIs:[ \t]*/,"",$i); split($i,a," "); u=a[1]}
                                         if($i ~ /^Suites:/){s=$i} }
                     if(u!="" && s !~ /security/ && s ~ /(bookworm|trixie|stable)/){print u; exit} }' "$f")
    fi
    if [ -z "$uri" ] && [ -r /etc/apt/sources.list ]; then
        uri=$(awk '$1=="deb" && $0 !~ /security/ {for(i=2;i<=NF;i++) if($i ~ /^[a-z]+:\/\//){print $i; exit}}' /etc/apt/sources.list)
    fi
    printf '%s' "$uri"
}

# Shared helpers of the rustnl scripts (sourced, not run).

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

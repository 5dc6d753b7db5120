#!/usr/bin/env bash
# Self-test of the QEMU harness, without booting a VM:
# - the verdict: a clean log passes; a log with each kind of kernel splat, a
#   kmemleak report, a failing or missing exit status fails;
# - `make vm-run CMD=...`: the command line reaches the guest's command file
#   byte for byte (quotes, `$`, newlines, non-text bytes), and busybox sh,
#   the guest's shell, runs that file as a shell would run the line;
# - scripts/doccheck.py: a broken link, a missing anchor, a drifted excerpt
#   and an unchecked snippet fail; the real pages pass.
set -uo pipefail
HERE=$(cd "$(dirname "$0")/../.." && pwd)
V="$HERE/scripts/verdict.sh"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0

clean() {
    cat <<'LOG'
[    0.000000] Linux version 7.3.4
[    0.000000] KernelAddressSanitizer initialized (generic)
[    9.388484] kmemleak: Automatic memory scanning thread started
test guest::echo ... ok
WARNING: this user-space line must not count
RUSTNL-KMEMLEAK-BEGIN
RUSTNL-KMEMLEAK-END
RUSTNL-EXIT=0
LOG
}

check() {  # name expected-exit log-content
    printf '%s\n' "$3" > "$tmp/log"
    bash "$V" "$tmp/log" 0 60 2>/dev/null
    local got=$?
    if [ "$got" = "$2" ]; then
        pass=$((pass + 1)); echo "test harness::$1 ... ok"
    else
        fail=$((fail + 1)); echo "test harness::$1 ... FAILED (exit $got, wanted $2)"
    fi
}

base=$(clean)
check clean_log_passes 0 "$base"
check missing_exit_fails 1 "$(printf '%s\n' "$base" | grep -v RUSTNL-EXIT)"
check nonzero_exit_fails 1 "$(printf '%s\n' "$base" | sed 's/RUSTNL-EXIT=0/RUSTNL-EXIT=3/')"
for s in \
    "BUG: KASAN: slab-out-of-bounds in rustnl_input+0x10/0x20" \
    "WARNING: CPU: 0 PID: 1 at net/netlink/af_netlink.c:100 foo+0x1/0x2" \
    "WARNING: possible circular locking dependency detected" \
    "Oops: general protection fault, probably for non-canonical address" \
    "kernel BUG at mm/slub.c:100!" \
    "BUG: sleeping function called from invalid context at mm/slab.h:1" \
    "kmemleak: 2 new suspected memory leaks (see /sys/kernel/debug/kmemleak)" \
    "INFO: task rustnl:77 blocked for more than 120 seconds." \
    "kmemleak: Kernel memory leak detector disabled" ; do
    name=$(printf '%s' "$s" | tr -c 'a-zA-Z0-9\n' '_' | cut -c1-40)
    check "splat_${name}_fails" 1 "$(printf '%s\n' "$base" | sed "2a [   12.000000] $s")"
done
check kunit_failure_fails 1 "$(printf '%s\n' "$base" | sed '2a [   11.000000]     not ok 3 rustnl_case')"
check kunit_pass_passes 0 "$(printf '%s\n' "$base" | sed '2a [   11.000000]     ok 3 rustnl_case')"
check kmemleak_object_fails 1 "$(printf '%s\n' "$base" | sed '/RUSTNL-KMEMLEAK-BEGIN/a unreferenced object 0xffff888003 (size 64):')"
check kmemleak_unavailable_fails 1 "$(printf '%s\n' "$base" | sed 's/RUSTNL-KMEMLEAK-BEGIN/RUSTNL-KMEMLEAK: unavailable/')"
# A kernel built without kmemleak (the bench kernel) says so and passes.
check kmemleak_off_on_bench_kernel_passes 0 "$(printf '%s\n' "$base" | sed '/RUSTNL-KMEMLEAK-BEGIN/,/RUSTNL-KMEMLEAK-END/c RUSTNL-KMEMLEAK: off (a kernel built without kmemleak)')"
rm -f "$tmp"/log.verdict

# --- make vm-run's CMD ---------------------------------------------------------
ok() { pass=$((pass + 1)); echo "test harness::$1 ... ok"; }
bad() { fail=$((fail + 1)); echo "test harness::$1 ... FAILED ($2)"; }
cmd_file() {  # CMD -> writes $tmp/cmd through the Makefile, as make vm-run does
    rm -f "$tmp/cmd"
    env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s -C "$HERE" vm-cmd CMD="$1" VM_CMD_FILE="$tmp/cmd" > "$tmp/make.out" 2>&1
}
cmd_passes() {  # name CMD [expected output of the guest's shell running it]
    local name=$1 cmd=$2
    if ! cmd_file "$cmd"; then bad "vm_cmd_$name" "make vm-cmd failed: $(head -c 200 "$tmp/make.out")"; return; fi
    printf '%s\n' "$cmd" > "$tmp/want"
    if ! cmp -s "$tmp/cmd" "$tmp/want"; then
        bad "vm_cmd_$name" "the command file differs: $(od -c "$tmp/cmd" | head -n 3 | tr '\n' ' ')"; return
    fi
    if [ $# -ge 3 ]; then
        # The guest runs it as tests/vm/init does: busybox sh, the profile
        # sourced first, in /root with HOME=/root.
        printf '%s' "$3" > "$tmp/want.out"
        (cd "$tmp" && HOME=/root busybox sh -c ". '$HERE/tests/vm/profile' && . '$tmp/cmd'") > "$tmp/got.out" 2>&1
        if ! cmp -s "$tmp/got.out" "$tmp/want.out"; then
            bad "vm_cmd_$name" "sh printed $(od -c "$tmp/got.out" | head -n 3 | tr '\n' ' ')"; return
        fi
    fi
    ok "vm_cmd_$name"
}
# shellcheck disable=SC2016 # the `$` are for the guest's shell
cmd_passes quotes_and_spaces 'printf "<%s>" "Hello you!"' '<Hello you!>'
cmd_passes dollar_home_unexpanded 'echo $HOME "$HOME" '\''$HOME'\''' $'/root /root $HOME\n'
cmd_passes two_lines $'echo one\necho "two  spaces"' $'one\ntwo  spaces\n'
cmd_passes backslashes_and_single_quotes $'printf \'%s\\n\' "a\\\\b" \'c\\d\' "it\'s"' $'a\\b\nc\\d\nit\'s\n'
cmd_passes non_text_bytes_printed $'printf \'\\001\\377x\\n\'' $'\001\377x\n'
cmd_passes non_text_bytes_in_cmd $'echo \'a\001\302b\'' $'a\001\302b\n'
cmd_passes make_metachars 'echo "% # ; $@ $< $(echo x) \$(CMD) $$ >/dev/null" >/dev/null; echo ok' $'ok\n'
cmd_passes readme_example 'rustnl echo hi; dmesg | tail -n 3'
if cmd_file ""; then
    bad vm_cmd_empty_is_a_usage_error "make vm-cmd CMD= succeeded"
elif [ "$(wc -l < "$tmp/make.out")" -le 2 ] && grep -q "give the command line as CMD=" "$tmp/make.out"; then
    ok vm_cmd_empty_is_a_usage_error
else
    bad vm_cmd_empty_is_a_usage_error "$(cat "$tmp/make.out")"
fi
# --- scripts/doccheck.py ---------------------------------------------------------
docs_fixture() {  # dir: a README and one page that link to each other, an excerpt
    mkdir -p "$1/docs" "$1/src" "$1/tests/doc/src"
    printf '# Top\n\nSee [the page](docs/page.md#a-section) and [code](src/x.rs).\n' > "$1/README.md"
    printf '# Page\n\n## A section\n\nBack to [the top](../README.md#top).\n\n<!-- excerpt: src/x.rs -->\n```rust,ignore\nfn x() {}\n```\n\n```sh\nls\n```\n' > "$1/docs/page.md"
    printf '// a file\nfn x() {}\n' > "$1/src/x.rs"
    : > "$1/tests/doc/src/lib.rs"
}
doccheck_case() {  # name expected-exit wanted-text-in-output edit-command
    local d="$tmp/docs-$1"
    docs_fixture "$d"
    (cd "$d" && eval "$4")
    local out got
    out=$(python3 "$HERE/scripts/doccheck.py" "$d" 2>&1); got=$?
    if [ "$got" = "$2" ] && printf '%s' "$out" | grep -q -- "$3"; then
        ok "doccheck_$1"
    else
        bad "doccheck_$1" "exit $got, wanted $2 with '$3': $out"
    fi
}
doccheck_case fixture_passes 0 "2 pages, ok" "true"
doccheck_case broken_link_fails 1 "no such file docs/nope.md" "sed -i 's|docs/page.md#a-section|docs/nope.md|' README.md"
doccheck_case missing_anchor_fails 1 "has no heading #a-sektion" "sed -i 's|#a-section|#a-sektion|' README.md"
doccheck_case drifted_excerpt_fails 1 "excerpt no longer in src/x.rs" "sed -i 's/fn x() {}/fn y() {}/' src/x.rs"
doccheck_case uncompiled_snippet_fails 1 "does not include" "printf '\\n\`\`\`rust\\nlet a = 1;\\n\`\`\`\\n' >> docs/page.md"
doccheck_case unlabelled_block_fails 1 "without a language" "printf '\\n\`\`\`\\nplain\\n\`\`\`\\n' >> docs/page.md"
if out=$(python3 "$HERE/scripts/doccheck.py" 2>&1); then ok doccheck_the_pages_pass; else bad doccheck_the_pages_pass "$out"; fi

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]

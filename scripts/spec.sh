#!/usr/bin/env bash
# Checks the YNL spec of the generic netlink family, shared/spec/rustnl.yaml,
# with the kernel's own schema and tools (part of `make test-host`).
#
# Usage: scripts/spec.sh check
#
#  1. schema: the spec validates against the 7.3 tree's
#     Documentation/netlink/genetlink.yaml (Python jsonschema + pyyaml, every
#     error listed);
#  2. ynl: the kernel's YNL CLI loads it offline
#     (tools/net/ynl/pyynl/cli.py --validate: schema plus YNL's resolution of
#     attribute sets, operations and groups; no family needs to be registered);
#  3. ids: the kernel's YNL parser (pyynl/lib/nlspec.py) numbers the spec, and
#     the numbers must be those of shared/src/genl.rs (the table
#     shared/tests/spec.rs writes; that test checks the same with its own port
#     of the rules).
#  4. ynl-gen: the kernel's C generator (pyynl/ynl_gen_c.py) renders the uAPI
#     header and the kernel's policies and ops table from it; the uAPI header
#     must be tests/bench/rustnl_genl.h byte for byte (the C reference
#     module's numbers of the family: regenerate with RUSTNL_BLESS=1). The
#     generator loops forever when no parent directory of the spec holds a
#     MAINTAINERS file and wants the schema beside the spec's directory, so it
#     runs on a copy in a scratch tree that has both, under a timeout.
#  5. ynl-gen fix: our patch of ynl_gen_c.py (tests/tool-patches/) applied to
#     a copy of the generator renders the payload's max-len 65531 with
#     NLA_BINARY's .len instead of the wrapping NLA_POLICY_MAX_LEN().
set -euo pipefail
MODE=${1:?usage: spec.sh check}
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
rustnl_script spec
SPEC=$HERE/shared/spec/rustnl.yaml
if [ -z "${KSRC:-}" ] && [ -f "$CACHE/toolchain.env" ]; then
    load_toolchain_env
fi
KSRC=${KSRC:-$CACHE/src/linux}
SCHEMA=$KSRC/Documentation/netlink/genetlink.yaml
PYYNL=$KSRC/tools/net/ynl/pyynl
[ "$MODE" = check ] || { echo "usage: spec.sh check" >&2; exit 2; }
[ -f "$SCHEMA" ] && [ -f "$PYYNL/cli.py" ] \
    || { echo "spec: no kernel source at $KSRC (run make deps)" >&2; exit 1; }

# A Python with pyyaml and jsonschema: $PYTHON, the one on PATH, or Debian's
# (where make deps installs python3-yaml and python3-jsonschema).
PY=
for p in ${PYTHON:-} python3 /usr/bin/python3; do
    if command -v "$p" > /dev/null && "$p" -c 'import yaml, jsonschema' 2> /dev/null; then
        PY=$p; break
    fi
done
[ -n "$PY" ] || { echo "spec: no python3 with yaml and jsonschema (make deps installs python3-yaml python3-jsonschema)" >&2; exit 1; }

tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
passed=0 failed=0
ok() { echo "spec: ok: $*"; passed=$((passed + 1)); }
bad() { echo "spec: FAILED: $*" >&2; failed=$((failed + 1)); }
# A Python failure's exception lines (its traceback prints the whole schema).
brief() { grep -E '^[A-Za-z_.]*(Error|Exception)\b' "$1" >&2 || tail -n 5 "$1" >&2; }

# 1. The schema, with every violation listed.
if "$PY" - "$SPEC" "$SCHEMA" > "$tmp/schema.log" 2>&1 <<'EOF'
import sys, yaml, jsonschema
spec = yaml.safe_load(open(sys.argv[1], encoding="utf-8"))
schema = yaml.safe_load(open(sys.argv[2], encoding="utf-8"))
# The schema names draft-07 by a URI jsonschema does not know: say it here.
cls = jsonschema.Draft7Validator
cls.check_schema(schema)
errors = sorted(cls(schema).iter_errors(spec), key=lambda e: list(e.path))
for e in errors:
    print("/".join(str(p) for p in e.path) or "(top)", ":", e.message)
sys.exit(1 if errors else 0)
EOF
then
    ok "shared/spec/rustnl.yaml validates against $SCHEMA"
else
    cat "$tmp/schema.log" >&2
    bad "shared/spec/rustnl.yaml does not validate against $SCHEMA"
fi

# 2. YNL's CLI loads it (offline).
if (cd "$tmp" && "$PY" "$PYYNL/cli.py" --spec "$SPEC" --schema "$SCHEMA" --validate) \
        > "$tmp/ynl.log" 2>&1; then
    ok "ynl cli.py --validate accepts it"
else
    brief "$tmp/ynl.log"
    bad "ynl cli.py --validate refuses it"
fi

# 3. YNL's numbering against src/genl.rs.
if PYTHONPATH=$PYYNL "$PY" - "$SPEC" "$SCHEMA" > "$tmp/ynl.ids" 2> "$tmp/ids.log" <<'EOF'
import sys
from lib import SpecFamily
f = SpecFamily(sys.argv[1], schema_path=sys.argv[2])
lines = [f"family {f.name} {f.yaml.get('version', 1)}"]
for name, c in f.consts.items():
    lines.append(f"const {name} {c['value']}")
for name, op in f.msgs.items():
    ids = {op.req_value, op.rsp_value} - {None}
    assert len(ids) == 1, f"{name}: request and reply ids differ"
    lines.append(f"op {name} {ids.pop()}")
for set_name, s in f.attr_sets.items():
    for name, a in s.attrs.items():
        lines.append(f"attr {set_name}.{name} {a.value}")
for i, name in enumerate(f.mcast_groups):
    lines.append(f"mcgrp {name} {i}")
print("\n".join(sorted(lines)))
EOF
then
    if (cd "$HERE" && RUSTNL_SPEC_IDS=$tmp/rust.ids \
            cargo test -q -p rustnl-shared --locked --test spec write_ids_table) \
            > "$tmp/cargo.log" 2>&1; then
        if diff -u --label "YNL (nlspec.py) numbering of the spec" --label "shared/src/genl.rs" \
                "$tmp/ynl.ids" "$tmp/rust.ids" > "$tmp/ids.diff"; then
            ok "YNL's numbering of the spec ($(wc -l < "$tmp/ynl.ids") ids) is shared/src/genl.rs's"
        else
            cat "$tmp/ids.diff" >&2
            bad "YNL's numbering of the spec differs from shared/src/genl.rs"
        fi
    else
        cat "$tmp/cargo.log" >&2
        bad "cargo test -p rustnl-shared --test spec write_ids_table failed"
    fi
else
    brief "$tmp/ids.log"
    bad "YNL's nlspec.py cannot number the spec"
fi

# 4. The C generator, guarded.
mkdir -p "$tmp/gen/spec"; : > "$tmp/gen/MAINTAINERS"
cp "$SCHEMA" "$tmp/gen/"; cp "$SPEC" "$tmp/gen/spec/"
gen() { (cd "$tmp/gen" && timeout 120 "$PY" "$PYYNL/ynl_gen_c.py" --spec "$tmp/gen/spec/rustnl.yaml" "$@"); }
if gen --mode uapi --header -o "$tmp/gen/rustnl.h" > "$tmp/gen.log" 2>&1 \
        && gen --mode kernel --source -o "$tmp/gen/rustnl-nl.c" >> "$tmp/gen.log" 2>&1 \
        && [ -s "$tmp/gen/rustnl.h" ] && [ -s "$tmp/gen/rustnl-nl.c" ]; then
    ok "ynl_gen_c.py renders the uAPI header ($(grep -c RUSTNL_ "$tmp/gen/rustnl.h") RUSTNL_ names) and the kernel ops/policies"
    # The C reference module's copy of the uAPI header (tests/bench).
    GENL_H=$HERE/tests/bench/rustnl_genl.h
    if [ "${RUSTNL_BLESS:-}" = 1 ]; then
        cp "$tmp/gen/rustnl.h" "$GENL_H"
        ok "wrote tests/bench/rustnl_genl.h (RUSTNL_BLESS=1)"
    elif diff -u --label "ynl_gen_c.py --mode uapi --header" --label tests/bench/rustnl_genl.h \
            "$tmp/gen/rustnl.h" "$GENL_H" > "$tmp/genl_h.diff"; then
        ok "tests/bench/rustnl_genl.h is ynl_gen_c.py's uAPI header"
    else
        cat "$tmp/genl_h.diff" >&2
        bad "tests/bench/rustnl_genl.h differs from ynl_gen_c.py's uAPI header (regenerate: RUSTNL_BLESS=1 bash scripts/spec.sh check)"
    fi
else
    brief "$tmp/gen.log"
    bad "ynl_gen_c.py cannot render the spec"
fi

# 5. Our fix of ynl_gen_c.py (tests/tool-patches/, in upstream form): the
#    generator as 7.3 ships it renders `payload` (max-len 65531) as
#    NLA_POLICY_MAX_LEN(), whose s16 .max wraps to -5: the kernel WARNs in
#    nla_get_range_unsigned() at the first such attribute and enforces no
#    bound. The patched copy must render it as NLA_BINARY with .len.
payload_rule() { grep -hE '\[RUSTNL_A_PAYLOAD\] =' "$@" | sort -u; }
if [ -s "$tmp/gen/rustnl-nl.c" ]; then
    if payload_rule "$tmp/gen/rustnl-nl.c" | grep -q 'NLA_POLICY_MAX_LEN(RUSTNL_MAX_ATTR_PAYLOAD)'; then
        echo "spec: exposed: this tree's ynl_gen_c.py renders payload as NLA_POLICY_MAX_LEN(RUSTNL_MAX_ATTR_PAYLOAD) (s16 .max wraps: WARN, no bound); the module and the C reference use .len"
    else
        echo "spec: this tree's ynl_gen_c.py renders payload as: $(payload_rule "$tmp/gen/rustnl-nl.c" | head -n 1)"
    fi
    mkdir -p "$tmp/patched/tools/net"
    cp -r "$KSRC/tools/net/ynl" "$tmp/patched/tools/net/"
    patched=true
    for p in "$HERE"/tests/tool-patches/*.patch; do
        [ -f "$p" ] || continue
        patch -s -p1 -N -d "$tmp/patched" < "$p" > "$tmp/patch.log" 2>&1 \
            || { cat "$tmp/patch.log" >&2; bad "$(basename "$p") does not apply to $KSRC"; patched=false; }
    done
    if $patched && (cd "$tmp/gen" && timeout 120 "$PY" "$tmp/patched/tools/net/ynl/pyynl/ynl_gen_c.py" \
            --spec "$tmp/gen/spec/rustnl.yaml" --mode kernel --source -o "$tmp/gen/rustnl-nl.patched.c") \
            > "$tmp/genp.log" 2>&1; then
        if payload_rule "$tmp/gen/rustnl-nl.patched.c" | grep -q '{ .type = NLA_BINARY, .len = RUSTNL_MAX_ATTR_PAYLOAD, }'; then
            ok "patched ynl_gen_c.py (tests/tool-patches) renders payload as { .type = NLA_BINARY, .len = RUSTNL_MAX_ATTR_PAYLOAD, }"
        else
            payload_rule "$tmp/gen/rustnl-nl.patched.c" >&2
            bad "patched ynl_gen_c.py still renders payload with a wrapping bound"
        fi
    elif $patched; then
        brief "$tmp/genp.log"
        bad "the patched ynl_gen_c.py cannot render the spec"
    fi
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]

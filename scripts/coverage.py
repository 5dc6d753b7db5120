#!/usr/bin/env python3
"""Module code coverage from QEMU's translation log (`make coverage`).

QEMU logs every block it translates in the module area (`-d in_asm
-dfilter`); TCG translates a block when it is first executed (and again
after the module's text is rewritten by a reload), so the union of the
logged instructions is the set of the module's instructions that ran. The
module's basic blocks come from its disassembly (`llvm-objdump -d -r`):
leaders are function entries, direct jump targets and the instructions after
jumps, returns and traps; a block counts as executed when any of its
instructions ran. Section addresses come from the guest's
`RUSTNL-SECTIONS` console lines (/sys/module/rustnl/sections).

Usage: coverage.py --ko rustnl.ko --reasons tests/coverage/reasons.txt
                   --out DIR NAME=QEMU_LOG:CONSOLE_LOG [NAME=...]
reasons.txt: one line a reason, FUNCTION-PART<TAB>reason, where FUNCTION-PART
is part of the demangled function name (or *), optionally followed by
" ~ REGEX" matched against the block's instructions and relocations.
Writes DIR/NAME.txt (table, unexecuted blocks with reasons) and
DIR/coverage.json; prints the tables. Exits 1 when a run named in --min
(NAME=PERCENT) is below its target, or when an unexecuted block of it has
no reason.
"""
import argparse
import json
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

SECTIONS = (".text", ".init.text", ".exit.text")
JUMP = re.compile(r"^j[a-z]+$")
ENDS = {"ret", "retq", "ud2", "int3", "jmp", "jmpq"}


def disassemble(ko):
    """Returns {section: [(offset, function, mnemonic, text, relocs)]}."""
    out = subprocess.run(
        ["llvm-objdump-19", "-d", "-r", "--no-show-raw-insn", "--demangle"]
        + [f"--section={s}" for s in SECTIONS] + [ko],
        check=True, capture_output=True, text=True).stdout
    insns, section, func = defaultdict(list), None, None
    for line in out.splitlines():
        m = re.match(r"^Disassembly of section (\S+):", line)
        if m:
            section, func = m.group(1), None
            continue
        m = re.match(r"^([0-9a-f]+) <(.*)>:$", line)
        if m:
            func = m.group(2)
            continue
        m = re.match(r"^\s+[0-9a-f]+:\s+(R_X86_64_\S+)\s+(.*)$", line)
        if m and insns[section]:
            insns[section][-1][4].append(m.group(2))
            continue
        m = re.match(r"^\s+([0-9a-f]+):\s+(\S+)\s*(.*)$", line)
        if m and section and func:
            insns[section].append([int(m.group(1), 16), func, m.group(2), m.group(3), []])
    return insns


def blocks(insns):
    """Splits each section into basic blocks: [(section, start, end, func, insns)]."""
    result = []
    for section, lst in insns.items():
        offs = {i[0] for i in lst}
        leaders = set()
        prev_func, prev_end = None, True
        for off, func, mn, text, _ in lst:
            if func != prev_func or prev_end:
                leaders.add(off)
            prev_func = func
            prev_end = mn in ENDS or JUMP.match(mn) is not None
            if JUMP.match(mn):
                t = re.match(r"^(0x)?([0-9a-f]+)\b", text)
                if t and int(t.group(2), 16) in offs:
                    leaders.add(int(t.group(2), 16))
        cur = None
        for ins in lst:
            if ins[0] in leaders or cur is None or ins[1] != cur[3]:
                cur = [section, ins[0], ins[0], ins[1], []]
                result.append(cur)
            cur[2] = ins[0]
            cur[4].append(ins)
    # Alignment padding between functions is not code.
    return [b for b in result
            if not all(i[2] in ("int3", "nop", "nopw", "nopl", "data16") for i in b[4])]


def is_sanitizer(block):
    """A KASAN report path: it runs only when KASAN has found a bad access
    (and then the console verdict fails the run). The same module built for
    a kernel without KASAN has none of these blocks."""
    if any(r.startswith("__asan_report") for i in block[4] for r in i[4]):
        return True
    # The compiler's KASAN constructor and destructor (register and
    # unregister the module's globals).
    if block[3].startswith(("asan.module_ctor", "asan.module_dtor")):
        return True
    # KASAN's slow path for a shadow byte that is not zero: is the access
    # inside the addressable part of its 8-byte granule? (`and $7` of the
    # address, compared with the shadow byte.)
    texts = [f"{i[2]} {i[3]}" for i in block[4]]
    return any(re.match(r"andb\s+\$0x7, %[a-z0-9]+l$", t) for t in texts) and \
        any(t.startswith("cmpb") for t in texts)


def executed(qemu_log, console_log):
    """Section offsets of the instructions QEMU translated in the module."""
    bases = defaultdict(set)
    for line in Path(console_log).read_text(errors="replace").splitlines():
        if line.startswith("RUSTNL-SECTIONS "):
            for kv in line.split()[1:]:
                k, _, v = kv.partition("=")
                bases[k].add(int(v, 16))
    if not bases.get(".text"):
        sys.exit(f"coverage: no RUSTNL-SECTIONS line in {console_log}")
    if any(len(v) > 1 for v in bases.values()):
        sys.exit(f"coverage: the module loaded at different addresses: {dict(bases)}")
    layout = sorted((next(iter(v)), k) for k, v in bases.items())
    ran = defaultdict(set)
    with open(qemu_log, errors="replace") as f:
        for line in f:
            if not line.startswith("0x"):
                continue
            m = re.match(r"^0x([0-9a-f]{16}):", line)
            if not m:
                continue
            pc = int(m.group(1), 16)
            owner = None
            for base, name in layout:
                if base <= pc:
                    owner = (base, name)
            if owner:
                ran[owner[1]].add(pc - owner[0])
    return ran


# Sections of objtool's and the kernel's metadata: their relocations point
# at every function (unwind tables, bug and exception tables, patch sites),
# not at what the module's code can call.
METADATA = (".orc", "__bug_table", ".altinstr", "__jump_table", ".return_sites",
            ".call_sites", ".retpoline_sites", "__patchable", ".ibt", ".static_call",
            "__ex_table", ".discard", "__mcount_loc", ".note", ".debug", ".kcfi",
            "__kcfi", ".BTF", ".rela")


def referenced(ko, insns):
    """Functions the module can run: reachable from what its data refers to
    (the module structure's init and exit, operation tables, vtables,
    parameters) through calls, jumps and relocations (calls through the
    PLT, function pointers taken in code). The rest are out-of-line copies
    nobody calls (every caller inlined them), and what only those call
    (e.g. the helpers of a `Debug` impl nothing formats)."""
    starts = {}  # section -> sorted [(offset, function)]
    for section, lst in insns.items():
        seen = {}
        for off, func, *_ in lst:
            seen.setdefault(func, off)
        starts[section] = sorted((o, f) for f, o in seen.items())

    def target(name):
        """A relocation's function: a symbol, or a section offset."""
        name = name.strip()
        m = re.match(r"^(\.\S+?)\+0x([0-9a-f]+)$", name)
        if m and m.group(1) in starts:
            off, found = int(m.group(2), 16), None
            for o, f in starts[m.group(1)]:
                if o <= off:
                    found = f
            return found
        return re.sub(r"[-+]0x[0-9a-f]+$", "", name)

    out = subprocess.run(["llvm-objdump-19", "-r", "--demangle", ko],
                         check=True, capture_output=True, text=True).stdout
    roots, section = set(), None
    for line in out.splitlines():
        m = re.match(r"^RELOCATION RECORDS FOR \[(\S+)\]:", line)
        if m:
            section = m.group(1)
            continue
        if section is None or section in SECTIONS or section.startswith(METADATA):
            continue
        m = re.match(r"^[0-9a-f]+\s+R_X86_64_\S+\s+(.*)$", line)
        if m:
            t = target(m.group(1))
            if t:
                roots.add(t)
    calls = defaultdict(set)
    for lst in insns.values():
        for _, func, mn, text, relocs in lst:
            t = re.search(r"<(.*?)(?:\+0x[0-9a-f]+)?>$", text)
            # A relocated call shows the next instruction as its target:
            # only calls and jumps the assembler resolved name a function,
            # and a function's jumps to its own labels do not count.
            if t and not relocs and t.group(1) != func and (mn.startswith("call") or JUMP.match(mn)):
                calls[func].add(t.group(1))
            for r in relocs:
                r = target(r)
                if r:
                    calls[func].add(r)
    names, todo = set(), list(roots)
    while todo:
        f = todo.pop()
        if f in names:
            continue
        names.add(f)
        todo.extend(calls.get(f, ()))
    return names


def load_reasons(path):
    reasons = []
    for line in Path(path).read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        pattern, kind, why = line.split("\t", 2)
        if kind not in ("unreachable", "untested"):
            sys.exit(f"coverage: {path}: kind must be unreachable or untested: {line}")
        reasons.append((pattern.strip(), f"{kind}: {why.strip()}"))
    return reasons


def reason_for(block, reasons, refs=None):
    section, start, _, func, ins = block
    if refs is not None and func not in refs and section == ".text":
        return "unreachable: out-of-line copy nobody calls: every caller inlined it"
    text = " ".join(f"{i[2]} {i[3]} {' '.join(i[4])}" for i in ins)
    if any("panic" in r or "build_error" in r for i in ins for r in i[4]) \
            or any(i[2] == "ud2" for i in ins):
        return "unreachable: panic/BUG trap the compiler inserted (overflow, bounds or unwrap check that cannot fail)"
    for pattern, why in reasons:
        where, _, what = pattern.partition(" ~ ")
        if (where == "*" or where in func) and (not what or re.search(what, text)):
            return why
    return None


def explain(all_blks, missing, reasons, refs):
    """A reason for every block never executed where one is known: its own
    (a trap, a dead copy, a line of reasons.txt), or else that of the
    unexecuted block it leads to or comes from (an error path spans
    several blocks: the check's slow side, the counter update, the free)."""
    why = {id(b): reason_for(b, reasons, refs) for b in missing}
    ordered = sorted(all_blks, key=lambda b: (b[0], b[1]))
    following = {(a[0], a[1]): n for a, n in zip(ordered, ordered[1:]) if a[0] == n[0]}
    by_start = {(b[0], b[1]): b for b in missing}
    succ, pred = defaultdict(list), defaultdict(list)
    for b in missing:
        last = b[4][-1]
        nxt = (b[0], b[2] + 1)
        targets = []
        t = re.match(r"^(0x)?([0-9a-f]+)\b", last[3])
        if JUMP.match(last[2]) and t:
            targets.append((b[0], int(t.group(2), 16)))
        if last[2] not in ENDS:
            # Falls through into the block that follows it.
            nb = following.get((b[0], b[1]))
            if nb is not None:
                targets.append((nb[0], nb[1]))
        for key in targets:
            if key in by_start and by_start[key][3] == b[3]:
                succ[id(b)].append(by_start[key])
                pred[id(by_start[key])].append(b)
    changed = True
    while changed:
        changed = False
        for b in missing:
            if why[id(b)] is not None:
                continue
            for n in succ[id(b)] + pred[id(b)]:
                if why[id(n)] is not None:
                    r = why[id(n)]
                    kind, _, text = r.partition(": ")
                    text = text if text.startswith("on the path of: ") else "on the path of: " + text
                    why[id(b)] = f"{kind}: {text}"
                    changed = True
                    break
    return why


def short(func):
    func = re.sub(r"::h[0-9a-f]{16}$", "", func)
    func = re.sub(r"\[[0-9a-f]{16}\]", "", func)
    return func if len(func) <= 90 else func[:87] + "..."


def report(name, all_blks, ran, reasons, refs):
    blks = [b for b in all_blks if not is_sanitizer(b)]
    sanitizer = len(all_blks) - len(blks)
    per_fn = defaultdict(lambda: [0, 0])
    missing = []
    for b in blks:
        offs = {i[0] for i in b[4]}
        hit = bool(offs & ran.get(b[0], set()))
        per_fn[b[3]][0] += 1
        per_fn[b[3]][1] += hit
        if not hit:
            missing.append(b)
    total = sum(v[0] for v in per_fn.values())
    hit = sum(v[1] for v in per_fn.values())
    reasons_of = explain(all_blks, missing, reasons, refs)
    cannot = sum(1 for b in missing if (reasons_of[id(b)] or "").startswith("unreachable:"))
    can = total - cannot
    pct = 100.0 * hit / can
    lines = [f"== {name}: {hit} of the {can} basic blocks that can run executed ({pct:.1f} %); "
             f"{cannot} cannot run (reasons below); all blocks: {hit} of {total} ({100.0 * hit / total:.1f} %); "
             f"not counted: {sanitizer} KASAN blocks (reports, and the slow path for partly "
             f"addressable granules: sanitizer code, absent on a kernel without KASAN)",
             f"{'blocks':>6} {'run':>6} {'%':>6}  function"]
    for func, (n, h) in sorted(per_fn.items(), key=lambda kv: (kv[1][1] / kv[1][0], kv[0])):
        lines.append(f"{n:>6} {h:>6} {100.0 * h / n:>6.1f}  {short(func)}")
    lines.append(f"{total:>6} {hit:>6} {100.0 * hit / total:>6.1f}  TOTAL (all blocks; {cannot} of them cannot run)")
    lines.append("")
    lines.append(f"-- {len(missing)} blocks never executed, with the reason:")
    unexplained = 0
    for b in missing:
        why = reasons_of[id(b)]
        if why is None:
            unexplained += 1
            why = "NO REASON RECORDED (add a test, or a line to tests/coverage/reasons.txt)"
        first = b[4][0]
        lines.append(f"{b[0]}+{b[1]:#x} ({len(b[4])} insns) {short(b[3])}: "
                     f"{first[2]} {first[3]}".rstrip())
        lines.append(f"    reason: {why}")
    return lines, {"blocks": total, "executed": hit, "cannot_run": cannot,
                   "percent": round(pct, 2), "percent_of_all": round(100.0 * hit / total, 2),
                   "kasan_report_blocks_not_counted": sanitizer,
                   "unexplained": unexplained,
                   "functions": {short(f): {"blocks": n, "executed": h} for f, (n, h) in per_fn.items()},
                   "never_executed": [{"where": f"{b[0]}+{b[1]:#x}", "function": short(b[3]),
                                       "reason": reasons_of[id(b)]} for b in missing]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ko", required=True)
    ap.add_argument("--reasons", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--min", action="append", default=[], help="NAME=PERCENT")
    ap.add_argument("runs", nargs="+", help="NAME=QEMU_LOG:CONSOLE_LOG")
    a = ap.parse_args()
    insns = disassemble(a.ko)
    blks = blocks(insns)
    refs = referenced(a.ko, insns)
    reasons = load_reasons(a.reasons)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    mins = dict(m.split("=") for m in a.min)
    summary, failed = {}, False
    for run in a.runs:
        name, _, logs = run.partition("=")
        qemu_log, _, console = logs.partition(":")
        lines, data = report(name, blks, executed(qemu_log, console), reasons, refs)
        (out / f"{name}.txt").write_text("\n".join(lines) + "\n")
        summary[name] = data
        table_end = next(i for i, l in enumerate(lines) if l.startswith("-- "))
        print("\n".join(lines[:table_end]))
        print(f"   ({len(data['never_executed'])} blocks never executed, "
              f"{data['unexplained']} without a reason: {out / (name + '.txt')})\n")
        if name in mins:
            if data["percent"] < float(mins[name]):
                print(f"coverage: {name}: {data['percent']} % is below the target {mins[name]} %")
                failed = True
            if data["unexplained"]:
                print(f"coverage: {name}: {data['unexplained']} unexecuted blocks have no reason")
                failed = True
    (out / "coverage.json").write_text(json.dumps(summary, indent=1) + "\n")
    sys.exit(1 if failed else 0)


main()

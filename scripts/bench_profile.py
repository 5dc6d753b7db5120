#!/usr/bin/env python3
"""Instruction profile of the modules' echo path (the profiler `make bench`
uses where the guest has no perf): QEMU logs every translated block
(`-d in_asm`) and every block executed (`-d exec,nochain`) in the module
area (`-dfilter`); this script weighs each executed block by its
instruction count and attributes it to the module function holding it
(from the guest's /proc/kallsyms, printed on the console).

Usage: bench_profile.py QEMU_LOG CONSOLE_LOG ECHOES
Prints instructions per echo, per function, most first.
"""
import re
import sys
from collections import Counter
from pathlib import Path

log, console, echoes = sys.argv[1], sys.argv[2], int(sys.argv[3])

# Translated blocks: "IN: [sym]" then lines "0xffff...:  insn".
sizes = {}
cur = None
for line in Path(log).read_text(errors="replace").splitlines():
    if line.startswith("IN:"):
        cur = None
        continue
    m = re.match(r"^0x([0-9a-f]{16}):\s", line)
    if m:
        pc = int(m.group(1), 16)
        if cur is None:
            cur = pc
            sizes[cur] = 0
        sizes[cur] += 1
    elif not line.strip():
        cur = None

# Executed blocks: "Trace N: 0x... [cs_base/pc/flags/...] sym".
runs = Counter()
for m in re.finditer(r"Trace \d+: 0x[0-9a-f]+ \[[0-9a-f]+/([0-9a-f]+)/", Path(log).read_text(errors="replace")):
    runs[int(m.group(1), 16)] += 1

# Module symbols: "ffffffffa0001234 t name [module]".
syms = []
for line in Path(console).read_text(errors="replace").splitlines():
    m = re.match(r"^([0-9a-f]{16}) [tTwW] (\S+)\s+\[(rustnl\w*)\]", line)
    if m:
        syms.append((int(m.group(1), 16), m.group(2)))
syms.sort()


def owner(pc):
    best = "?"
    for addr, name in syms:
        if addr <= pc:
            best = name
        else:
            break
    return best


per_fn = Counter()
total = 0
for pc, n in runs.items():
    insns = sizes.get(pc, 0) * n
    per_fn[owner(pc)] += insns
    total += insns
print(f"module instructions per echo: {total / echoes:.1f} ({total} over {echoes} echoes)")
for name, n in per_fn.most_common(25):
    short = re.sub(r"_R[A-Za-z0-9_]*?(\d+)([a-z_]\w*)$", r"\2", name)
    print(f"  {n / echoes:8.1f}  {name[:110]}")

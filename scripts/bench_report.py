#!/usr/bin/env python3
"""Turns the guest's RUSTNL-BENCH lines (and the codec benchmark's results)
into the `make bench` table and JSON.

Every kernel figure is shown for the Rust module, the C module and as the
ratio Rust/C of *time* (round-trip time, or time per message / delivery for
the rates): below 1 the Rust module is faster, 1.02 means 2 % slower.
Figures of several rounds are combined with the median (minimum for `min`).
"""
import argparse
import json
import statistics
import sys
from pathlib import Path

TARGETS = {
    "echo_rtt": 1.02,  # Rust/C median RTT, every size
    "fanout": 1.05,  # Rust/C time per delivery
    "batch_gain": 5.0,  # K=64 rate / K=1 rate (Rust)
    "codec_speedup": 1.5,  # netlink-packet-core time / rustnl time
    "allocs": 0.0,  # heap allocations per message, hot path
}


def bench_lines(path):
    out = []
    for line in Path(path).read_text(errors="replace").splitlines():
        if line.startswith("RUSTNL-BENCH {"):
            out.append(json.loads(line[len("RUSTNL-BENCH "):]))
    if not out:
        sys.exit(f"bench_report: no RUSTNL-BENCH lines in {path}")
    return out


def key_of(rec):
    m = rec["metric"]
    for p in ("size", "k", "listeners"):
        if p in rec:
            return (m, p, rec[p])
    return (m, "", 0)


def combine(records):
    """(metric, param, value) -> module -> figures combined over rounds."""
    by = {}
    for r in records:
        by.setdefault(key_of(r), {}).setdefault(r["module"], []).append(r)
    out = {}
    for k, mods in by.items():
        out[k] = {}
        for mod, rs in mods.items():
            if k[0] == "echo_rtt_ns":
                out[k][mod] = {
                    "min": min(r["min"] for r in rs),
                    "median": statistics.median(r["median"] for r in rs),
                    "p99": statistics.median(r["p99"] for r in rs),
                    "allocs_per_msg": max(r["allocs_per_msg"] for r in rs),
                    "n": sum(r["n"] for r in rs),
                    "rounds": len(rs),
                }
            else:
                fig = {"value": statistics.median(r["value"] for r in rs),
                       "n": sum(r.get("n", 0) for r in rs), "rounds": len(rs)}
                if "answer_datagrams_per_batch" in rs[0]:
                    fig["answer_datagrams_per_batch"] = statistics.median(
                        r["answer_datagrams_per_batch"] for r in rs)
                out[k][mod] = fig
    return out


def kernel_rows(fig):
    rows = []

    def add(name, rust, c, unit, ratio, note=""):
        rows.append({"figure": name, "rust": rust, "c": c, "unit": unit,
                     "rust_over_c": ratio, "note": note})

    for (metric, p, v), mods in sorted(fig.items(), key=lambda kv: (kv[0][0], kv[0][2])):
        r, c = mods.get("rust"), mods.get("c")
        if not r or not c:
            continue
        if metric == "echo_rtt_ns":
            for stat in ("min", "median", "p99"):
                add(f"echo {v} B rtt {stat}", r[stat] / 1000, c[stat] / 1000, "us",
                    r[stat] / c[stat])
        elif metric == "batch_msgs_per_sec":
            add(f"batched echo K={v}", r["value"], c["value"], "msg/s",
                c["value"] / r["value"],
                f"answer datagrams per batch: rust {r.get('answer_datagrams_per_batch', 0):.1f}, "
                f"c {c.get('answer_datagrams_per_batch', 0):.1f}")
        elif metric == "fanout_deliveries_per_sec":
            add(f"fan-out N={v}", r["value"], c["value"], "deliveries/s",
                c["value"] / r["value"])
        elif metric == "client_echo_allocs_per_msg":
            add("allocs/msg Client::echo", r["value"], c["value"], "allocs", None)
    return rows


def targets(fig, codec, allocs):
    checks = []
    for (metric, p, v), mods in fig.items():
        if metric == "echo_rtt_ns" and "rust" in mods and "c" in mods:
            ratio = mods["rust"]["median"] / mods["c"]["median"]
            checks.append((f"echo {v} B median rtt Rust/C <= {TARGETS['echo_rtt']}", ratio,
                           ratio <= TARGETS["echo_rtt"]))
        if metric == "fanout_deliveries_per_sec" and "rust" in mods and "c" in mods:
            ratio = mods["c"]["value"] / mods["rust"]["value"]
            checks.append((f"fan-out N={v} time Rust/C <= {TARGETS['fanout']}", ratio,
                           ratio <= TARGETS["fanout"]))
    k1 = fig.get(("batch_msgs_per_sec", "k", 1), {}).get("rust")
    k64 = fig.get(("batch_msgs_per_sec", "k", 64), {}).get("rust")
    if k1 and k64:
        gain = k64["value"] / k1["value"]
        checks.append((f"batched K=64 >= {TARGETS['batch_gain']}x K=1 (Rust)", gain,
                       gain >= TARGETS["batch_gain"]))
    for (metric, p, v), mods in fig.items():
        if metric == "echo_rtt_ns" and "rust" in mods:
            a = mods["rust"]["allocs_per_msg"]
            checks.append((f"allocs/msg, raw socket echo {v} B", a, a <= TARGETS["allocs"]))
        if metric == "client_echo_allocs_per_msg" and "rust" in mods:
            a = mods["rust"]["value"]
            checks.append(("allocs/msg, Client::echo", a, a <= TARGETS["allocs"]))
    for row in codec:
        if row["speedup"] is not None and row["against"] == "netlink_packet_core":
            checks.append((f"codec {row['case']} vs netlink-packet-core >= {TARGETS['codec_speedup']}x",
                           row["speedup"], row["speedup"] >= TARGETS["codec_speedup"]))
    for k, v in (allocs or {}).items():
        if isinstance(v, (int, float)) and k.startswith("rustnl"):
            checks.append((f"allocs/msg {k}", v, v <= TARGETS["allocs"]))
    return checks


def codec_rows(root):
    rows = []
    if not root or not Path(root).is_dir():
        return rows
    for group in sorted(p for p in Path(root).iterdir() if p.is_dir()):
        est = {}
        for f in group.iterdir():
            e = f / "new" / "estimates.json"
            if e.is_file():
                est[f.name] = json.loads(e.read_text())["mean"]["point_estimate"]
        if "rustnl" not in est:
            continue
        for other, t in sorted(est.items()):
            if other == "rustnl":
                continue
            rows.append({"case": group.name, "rustnl_ns": est["rustnl"], "against": other,
                         "other_ns": t, "speedup": t / est["rustnl"]})
    return rows


def fmt(x):
    if x is None:
        return "-"
    if isinstance(x, float):
        if x >= 1000:
            return f"{x:,.0f}"
        if x >= 10:
            return f"{x:.1f}"
        return f"{x:.3f}"
    return str(x)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--accel", required=True)
    ap.add_argument("--wall", required=True)
    ap.add_argument("--icount")
    ap.add_argument("--criterion")
    ap.add_argument("--allocs")
    ap.add_argument("--json", required=True)
    a = ap.parse_args()

    modes = {f"wall clock ({a.accel.upper()})": combine(bench_lines(a.wall))}
    if a.icount:
        modes["instruction time (TCG -icount shift=0)"] = combine(bench_lines(a.icount))
    codec = codec_rows(a.criterion)
    allocs = None
    if a.allocs:
        # user/benches/allocs.rs: {"allocs_per_msg": {key: worst case}, ...}
        allocs = json.loads(Path(a.allocs).read_text()).get("allocs_per_msg", {})

    result = {"accel": a.accel, "modes": {}, "codec": codec, "allocs": allocs, "targets": {}}
    for mode, fig in modes.items():
        rows = kernel_rows(fig)
        result["modes"][mode] = rows
        print(f"\n== kernel: {mode}; Rust/C is a time ratio (< 1: Rust faster)")
        print(f"{'figure':<28} {'Rust':>14} {'C':>14} {'unit':<13} {'Rust/C':>7}  note")
        for r in rows:
            print(f"{r['figure']:<28} {fmt(r['rust']):>14} {fmt(r['c']):>14} {r['unit']:<13} "
                  f"{fmt(r['rust_over_c']):>7}  {r['note']}")
        checks = targets(fig, codec, allocs)
        result["targets"][mode] = [{"target": t, "value": v, "met": ok} for t, v, ok in checks]
    if codec:
        print("\n== userspace codec (criterion, host): time per iteration")
        print(f"{'case':<10} {'rustnl ns':>10} {'vs':<26} {'their ns':>10} {'speedup':>8}")
        for r in codec:
            print(f"{r['case']:<10} {fmt(r['rustnl_ns']):>10} {r['against']:<26} "
                  f"{fmt(r['other_ns']):>10} {fmt(r['speedup']):>8}")
    if allocs:
        print("\n== heap allocations per message (host, counting allocator)")
        for k, v in allocs.items():
            print(f"  {k}: {v}")
    for mode, checks in result["targets"].items():
        print(f"\n== targets ({mode})")
        for c in checks:
            print(f"  [{'met ' if c['met'] else 'MISS'}] {c['target']}: {fmt(c['value'])}")
    Path(a.json).write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nbench: {a.json}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Turns the guest's RUSTNL-BENCH lines (and the codec benchmark's results)
into the `make bench` table and JSON.

Every kernel figure is shown for the Rust module, the C module and as the
ratio Rust/C of *time* (round-trip time, or time per message / delivery for
the rates): below 1 the Rust module is faster, 1.02 means 2 % slower.
Figures of several rounds are combined with the median (minimum for `min`).

The generic netlink face's figures (metrics `genl_*`) get the same rows
(Rust genl / C genl), plus the face against the classic one in the same
module: genl/classic, a time ratio per module (above 1: genl is slower).
"""
import argparse
import json
import statistics
import sys
from pathlib import Path

TARGETS = {
    "echo_rtt": 1.02,  # Rust/C median RTT, every size, both faces
    "fanout": 1.05,  # Rust/C time per delivery, both faces
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
            if face(k[0])[1] == "echo_rtt_ns":
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


def face(metric):
    """('genl ', 'echo_rtt_ns') for 'genl_echo_rtt_ns', ('', m) otherwise."""
    if metric.startswith("genl_"):
        return "genl ", metric[len("genl_"):]
    return "", metric


def kernel_rows(fig):
    rows = []

    def add(name, rust, c, unit, ratio, note=""):
        rows.append({"figure": name, "rust": rust, "c": c, "unit": unit,
                     "rust_over_c": ratio, "note": note})

    for (metric, p, v), mods in sorted(fig.items(), key=lambda kv: (kv[0][0], kv[0][2])):
        r, c = mods.get("rust"), mods.get("c")
        if not r or not c:
            continue
        f, base = face(metric)
        if base == "echo_rtt_ns":
            for stat in ("min", "median", "p99"):
                add(f"{f}echo {v} B rtt {stat}", r[stat] / 1000, c[stat] / 1000, "us",
                    r[stat] / c[stat])
        elif base == "batch_msgs_per_sec":
            add(f"{f}batched echo K={v}", r["value"], c["value"], "msg/s",
                c["value"] / r["value"],
                f"answer datagrams per batch: rust {r.get('answer_datagrams_per_batch', 0):.1f}, "
                f"c {c.get('answer_datagrams_per_batch', 0):.1f}")
        elif base == "fanout_deliveries_per_sec":
            add(f"{f}fan-out N={v}", r["value"], c["value"], "deliveries/s",
                c["value"] / r["value"])
        elif base == "client_echo_allocs_per_msg":
            add(f"{f}allocs/msg Client::echo", r["value"], c["value"], "allocs", None)
    return rows


def face_rows(fig):
    """genl against classic in the same module: time ratios (> 1: genl slower)."""
    rows = []
    for (metric, p, v), genl in sorted(fig.items(), key=lambda kv: (kv[0][0], kv[0][2])):
        if not metric.startswith("genl_"):
            continue
        classic = fig.get((metric[len("genl_"):], p, v), {})
        ratio = {}
        for mod in ("rust", "c"):
            g, k = genl.get(mod), classic.get(mod)
            if not g or not k:
                ratio[mod] = None
            elif metric == "genl_echo_rtt_ns":
                ratio[mod] = g["median"] / k["median"]
            else:
                ratio[mod] = k["value"] / g["value"]
        what = f"echo {v} B median rtt" if metric == "genl_echo_rtt_ns" else f"fan-out N={v}"
        rows.append({"figure": f"{what} genl/classic", "rust": ratio["rust"], "c": ratio["c"],
                     "unit": "time ratio", "rust_over_c": None, "note": ""})
    return rows


def targets(fig, codec, allocs):
    checks = []
    for (metric, p, v), mods in sorted(fig.items(), key=lambda kv: (kv[0][0], kv[0][2])):
        f, base = face(metric)
        if base == "echo_rtt_ns" and "rust" in mods and "c" in mods:
            ratio = mods["rust"]["median"] / mods["c"]["median"]
            checks.append((f"{f}echo {v} B median rtt Rust/C <= {TARGETS['echo_rtt']}", ratio,
                           ratio <= TARGETS["echo_rtt"]))
        if base == "fanout_deliveries_per_sec" and "rust" in mods and "c" in mods:
            ratio = mods["c"]["value"] / mods["rust"]["value"]
            checks.append((f"{f}fan-out N={v} time Rust/C <= {TARGETS['fanout']}", ratio,
                           ratio <= TARGETS["fanout"]))
    k1 = fig.get(("batch_msgs_per_sec", "k", 1), {}).get("rust")
    k64 = fig.get(("batch_msgs_per_sec", "k", 64), {}).get("rust")
    if k1 and k64:
        gain = k64["value"] / k1["value"]
        checks.append((f"batched K=64 >= {TARGETS['batch_gain']}x K=1 (Rust)", gain,
                       gain >= TARGETS["batch_gain"]))
    for (metric, p, v), mods in sorted(fig.items(), key=lambda kv: (kv[0][0], kv[0][2])):
        f, base = face(metric)
        if base == "echo_rtt_ns" and "rust" in mods:
            a = mods["rust"]["allocs_per_msg"]
            checks.append((f"allocs/msg, raw socket {f}echo {v} B", a, a <= TARGETS["allocs"]))
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
        faces = face_rows(fig)
        result["modes"][mode] = rows
        result.setdefault("genl_over_classic", {})[mode] = faces
        print(f"\n== kernel: {mode}; Rust/C is a time ratio (< 1: Rust faster)")
        print(f"{'figure':<33} {'Rust':>14} {'C':>14} {'unit':<13} {'Rust/C':>7}  note")
        for r in rows:
            print(f"{r['figure']:<33} {fmt(r['rust']):>14} {fmt(r['c']):>14} {r['unit']:<13} "
                  f"{fmt(r['rust_over_c']):>7}  {r['note']}")
        if faces:
            print(f"\n-- generic netlink face against the classic one, in the same module "
                  f"(time ratio, > 1: genl slower)")
            print(f"{'figure':<37} {'Rust':>10} {'C':>10}")
            for r in faces:
                print(f"{r['figure']:<37} {fmt(r['rust']):>10} {fmt(r['c']):>10}")
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

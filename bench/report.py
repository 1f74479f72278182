#!/usr/bin/env python3
"""Renders bench/run.sh's measurements as a table.

usage: report.py RUNDIR OUT.json
Reads RUNDIR/results.txt ("key value" lines, a key repeated once per round)
and RUNDIR/<server>-<job>.r<round>.json (fio output), prints the table of
medians, writes all numbers to OUT.json.
Exit status 3 when a target is missed (only targets that could be measured).
"""
import glob
import json
import os
import statistics
import sys

TARGETS = {
    "space": 1.05,      # dedisk physical <= 1.05 x ideal
    "write": 0.6,       # nbdcopy write MB/s >= 0.6 x nbdkit
    "randwrite": 0.6,   # fio randwrite IOPS >= 0.6 x nbdkit
    "randread": 0.7,    # fio randread IOPS >= 0.7 x nbdkit
    "rss": 1 << 30,     # peak RSS well under 1 GiB
}
SERVERS = ("dedisk", "nbdkit")


ALL = {}  # key -> every value recorded (one per round)


def load(rundir):
    """results.txt as key -> last value; all values (rounds) go to ALL."""
    r = {}
    with open(os.path.join(rundir, "results.txt")) as f:
        for line in f:
            line = line.rstrip("\n")
            if line:
                k, _, v = line.partition(" ")
                r[k] = v
                ALL.setdefault(k, []).append(v)
    return r


def num(r, key):
    """Median over the rounds of a numeric result, or None."""
    vals = []
    for v in ALL.get(key, []):
        try:
            vals.append(float(v))
        except ValueError:
            pass
    return statistics.median(vals) if vals else None


def fio(rundir, server, job):
    """Median IOPS / bandwidth / p99 latency of a fio job over the rounds."""
    runs = []
    for path in sorted(glob.glob(os.path.join(rundir, f"{server}-{job}.r*.json"))):
        with open(path) as f:
            text = f.read()
        # fio may print notes before the JSON object
        d = json.loads(text[text.index("{"):])
        j = d["jobs"][0]
        side = j["read"] if j["read"]["io_bytes"] else j["write"]
        p99 = side.get("clat_ns", {}).get("percentile", {}).get("99.000000")
        runs.append({"iops": side["iops"], "bw_bytes": side["bw_bytes"],
                     "p99_ms": p99 / 1e6 if p99 else None})
    if not runs:
        return None
    med = lambda k: statistics.median([x[k] for x in runs if x[k] is not None] or [0]) or None
    return {"iops": med("iops"), "bw_bytes": med("bw_bytes"), "p99_ms": med("p99_ms"),
            "iops_all": [x["iops"] for x in runs]}


def features(rundir, server):
    """What the server offered to nbdinfo, e.g. "multi-conn fua trim zero extents"."""
    path = os.path.join(rundir, f"{server}-nbdinfo.json")
    try:
        with open(path) as f:
            d = json.load(f)
        e = d["exports"][0]
    except (OSError, ValueError, KeyError, IndexError):
        return None
    names = [("can_multi_conn", "multi-conn"), ("can_flush", "flush"), ("can_fua", "fua"),
             ("can_trim", "trim"), ("can_zero", "zero"), ("can_fast_zero", "fast-zero"),
             ("can_cache", "cache")]
    out = [label for key, label in names if e.get(key)]
    if "base:allocation" in e.get("contexts", []):
        out.append("extents")
    if d.get("structured"):
        out.append("structured")
    return " ".join(out) or "none"


def gib(b):
    return None if b is None else f"{b / (1 << 30):.3f} GiB"


def mib(b):
    return None if b is None else f"{b / (1 << 20):.0f} MiB"


def f1(x):
    return None if x is None else f"{x:,.1f}"


def f0(x):
    return None if x is None else f"{x:,.0f}"


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def main():
    rundir, out_json = sys.argv[1], sys.argv[2]
    r = load(rundir)
    logical = num(r, "logical")
    ideal = num(r, "ideal.idealBytes")
    res = {"machine": {k[8:]: v for k, v in r.items() if k.startswith("machine.")},
           "images": {"count": int(num(r, "images") or 0), "source": r.get("source"),
                      "logicalBytes": logical,
                      "idealBytes": ideal,
                      "uniqueBlocks": num(r, "ideal.uniqueBlocks"),
                      "nonZeroBlocks": num(r, "ideal.nonZeroBlocks")},
           "servers": {}}
    for s in SERVERS:
        if f"{s}.write.secs" not in r:
            continue
        m = {"physicalBytes": num(r, f"{s}.physical"),
             "statsPhysicalBytes": num(r, f"{s}.stats.physicalUsedBytes"),
             "indexDiskBytes": num(r, f"{s}.stats.indexDiskBytes"),
             "peakRssBytes": num(r, f"{s}.hwm"),
             "verify": "ok" if ALL.get(f"{s}.verify") and all(v == "ok" for v in ALL[f"{s}.verify"])
                       else " ".join(ALL.get(f"{s}.verify", ["skipped"]))}
        for ph in ("write", "read", "randwrite", "fill", "randread"):
            m[f"{ph}Secs"] = num(r, f"{s}.{ph}.secs")
            m[f"{ph}CpuSecs"] = num(r, f"{s}.{ph}.cpu")
        for ph in ("write", "read"):
            secs = m[f"{ph}Secs"]
            m[f"{ph}MBps"] = logical / secs / 1e6 if logical and secs else None
        for job in ("randwrite", "randread"):
            fr = fio(rundir, s, job)
            m[f"{job}Iops"] = fr["iops"] if fr else None
            m[f"{job}P99Ms"] = fr["p99_ms"] if fr else None
            m[f"{job}IopsRounds"] = fr["iops_all"] if fr else []
        m["features"] = features(rundir, s)
        res["servers"][s] = m
    with open(out_json, "w") as f:
        json.dump(res, f, indent=2)

    srv = res["servers"]
    d = srv.get("dedisk", {})
    n = srv.get("nbdkit", {})
    checks = []  # (name, ok)

    def target(name, value, limit, higher_is_better, label):
        if value is None:
            return label + " (n/a)"
        ok = value >= limit if higher_is_better else value <= limit
        checks.append((name, ok))
        return f"{label}: {'PASS' if ok else 'MISS'}"

    rows = []
    def row(metric, dv, nv, rat, tgt=""):
        rows.append((metric, dv or "-", nv or "-", rat or "-", tgt))

    # space
    dp, np_ = d.get("physicalBytes"), n.get("physicalBytes")
    row("physical bytes used (du)", gib(dp), gib(np_), f2(ratio(dp, np_)),
        target("space", ratio(dp, ideal), TARGETS["space"], False, "<= 1.05x ideal") if "dedisk" in srv else "")
    if ideal:
        row("  / ideal", f2(ratio(dp, ideal)), f2(ratio(np_, ideal)), "", f"ideal = {gib(ideal)}")
    if d.get("statsPhysicalBytes") is not None:
        row("  stats physicalUsedBytes (check)", gib(d["statsPhysicalBytes"]), "", "",
            f"du - stats = {gib(dp - d['statsPhysicalBytes'])}" if dp is not None else "")
    if d.get("indexDiskBytes") is not None and dp is not None:
        row("  of which dedup index files", gib(d["indexDiskBytes"]), "", "", "fixed by --index-memory")
        if ideal:
            row("  without the index / ideal", f2(ratio(dp - d["indexDiskBytes"], ideal)), "", "", "")
    for ph, label in (("write", "nbdcopy write MB/s"), ("read", "nbdcopy read MB/s")):
        dv, nv = d.get(f"{ph}MBps"), n.get(f"{ph}MBps")
        tgt = ""
        if ph == "write" and d and n:
            tgt = target("write", ratio(dv, nv), TARGETS["write"], True, ">= 0.6x nbdkit")
        row(label, f1(dv), f1(nv), f2(ratio(dv, nv)), tgt)
        dv, nv = d.get(f"{ph}Secs"), n.get(f"{ph}Secs")
        row("  elapsed s", f2(dv), f2(nv), f2(ratio(dv, nv)))
    for job, label, key in (("randwrite", "fio 4k randwrite IOPS", ">= 0.6x nbdkit"),
                            ("randread", "fio 4k randread IOPS", ">= 0.7x nbdkit")):
        dv, nv = d.get(f"{job}Iops"), n.get(f"{job}Iops")
        tgt = target(job, ratio(dv, nv), TARGETS[job], True, key) if d and n else ""
        row(label, f0(dv), f0(nv), f2(ratio(dv, nv)), tgt)
        row("  p99 latency ms", f2(d.get(f"{job}P99Ms")), f2(n.get(f"{job}P99Ms")),
            f2(ratio(d.get(f"{job}P99Ms"), n.get(f"{job}P99Ms"))))
    for ph in ("write", "read", "randwrite", "randread"):
        dv, nv = d.get(f"{ph}CpuSecs"), n.get(f"{ph}CpuSecs")
        row(f"server CPU s ({ph})", f2(dv), f2(nv), f2(ratio(dv, nv)))
    dv, nv = d.get("peakRssBytes"), n.get("peakRssBytes")
    row("server peak RSS (VmHWM)", mib(dv), mib(nv), f2(ratio(dv, nv)),
        target("rss", dv, TARGETS["rss"], False, "well under 1 GiB") if d else "")
    row("data read back == image", d.get("verify"), n.get("verify"), "")

    mach = res["machine"]
    img = res["images"]
    print()
    print(f"machine: {mach.get('nproc')} CPUs, {mach.get('cpu')}, kernel {mach.get('kernel')}, "
          f"{float(mach.get('mem', 0)) / (1 << 30):.0f} GiB RAM")
    print(f"java: {mach.get('java')}; {mach.get('nbdkit')}; {mach.get('nbdcopy')}; {mach.get('fio')}")
    print(f"images: {img['count']} ({img['source']}), {gib(logical)} logical", end="")
    if img["nonZeroBlocks"] is not None:
        print(f", {gib(img['nonZeroBlocks'] * 4096)} in non-zero 4 KiB blocks,"
              f" {gib(img['uniqueBlocks'] * 4096)} unique", end="")
    print()
    print(f"fio: {mach.get('fio')} nbd engine, iodepth 32, {r.get('fio.size')} volume, "
          f"{r.get('fio.runtime')} s per random phase")
    if int(r.get("rounds", "1")) > 1:
        print(f"rounds: {r['rounds']} (order alternated); every number is the median")
    print()
    head = ("metric", "dedisk", "nbdkit file", "dedisk/nbdkit", "target")
    widths = [max(len(str(x[i])) for x in rows + [head]) for i in range(5)]
    fmt = "  ".join(("{:<%d}" if i == 0 else "{:>%d}") % widths[i] for i in range(4))
    line = lambda x: (fmt.format(*x[:4]) + "  " + x[4]).rstrip()
    print(line(head))
    print("-" * (sum(widths) + 8))
    for x in rows:
        print(line(x))
    for name, m in srv.items():
        print(f"NBD features {name} offered: {m.get('features') or 'n/a'}")
    print()
    missed = [name for name, ok in checks if not ok]
    if checks:
        print("targets: " + ("all met" if not missed else "MISSED: " + ", ".join(missed)))
    bad = [s for s, m in srv.items() if m.get("verify") not in ("ok", "skipped")]
    if bad:
        print("DATA MISMATCH on: " + ", ".join(bad))
        return 4
    return 3 if missed else 0


def f2(x):
    return None if x is None else f"{x:.2f}"


if __name__ == "__main__":
    sys.exit(main())

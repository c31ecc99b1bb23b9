#!/usr/bin/env python3
"""Result handling for benches/load/run.sh.

  report.py wrk FILE                 -> one TSV row fragment from wrk's output
  report.py oha FILE                 -> the same from oha's --output-format json
  report.py metric FILE NAME [LABEL=VALUE ...]
                                     -> the sum of a Prometheus sample in a /metrics dump
  report.py summary RESULTS.tsv ENV.txt OUT.md
                                     -> the markdown table (also printed)

A row fragment is: requests, seconds, req/s, p50 ms, p99 ms, p99.9 ms, errors, non-2xx.
"""

import json
import re
import sys

FIELDS = ["requests", "seconds", "rps", "p50_ms", "p99_ms", "p999_ms", "errors", "non2xx"]


def emit(d):
    print("\t".join(str(d[k]) for k in FIELDS))


def parse_wrk(path):
    text = open(path).read()
    m = re.search(r"^WRKSUMMARY (.*)$", text, re.M)
    if not m:
        sys.exit(f"{path}: no WRKSUMMARY line (did wrk run the Lua script?)")
    kv = {k: float(v) for k, v in (p.split("=") for p in m.group(1).split())}
    non2xx = int(kv["status"])
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if m:
        non2xx = max(non2xx, int(m.group(1)))
    seconds = kv["duration_us"] / 1e6
    emit(
        {
            "requests": int(kv["requests"]),
            "seconds": f"{seconds:.2f}",
            "rps": f"{kv['requests'] / seconds:.0f}" if seconds else "0",
            "p50_ms": f"{kv['p50_us'] / 1000:.3f}",
            "p99_ms": f"{kv['p99_us'] / 1000:.3f}",
            "p999_ms": f"{kv['p999_us'] / 1000:.3f}",
            "errors": int(kv["connect"] + kv["read"] + kv["write"] + kv["timeout"]),
            "non2xx": non2xx,
        }
    )


def parse_oha(path):
    d = json.load(open(path))
    s = d["summary"]
    pct = d.get("latencyPercentiles", {})
    codes = d.get("statusCodeDistribution", {})
    errors = sum(d.get("errorDistribution", {}).values())
    ok = sum(v for k, v in codes.items() if str(k).startswith("2"))
    total = sum(codes.values())
    seconds = s.get("total", 0.0)

    def ms(key):
        v = pct.get(key)
        return f"{v * 1000:.3f}" if v is not None else "n/a"

    emit(
        {
            "requests": total,
            "seconds": f"{seconds:.2f}",
            "rps": f"{total / seconds:.0f}" if seconds else "0",
            "p50_ms": ms("p50"),
            "p99_ms": ms("p99"),
            "p999_ms": ms("p99.9"),
            "errors": errors,
            "non2xx": total - ok,
        }
    )


def metric(path, name, *labels):
    want = dict(label.split("=", 1) for label in labels)
    total = 0.0
    found = False
    for line in open(path):
        if line.startswith("#"):
            continue
        m = re.match(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)", line)
        if not m or m.group(1) != name:
            continue
        got = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2) or ""))
        if all(got.get(k) == v for k, v in want.items()):
            total += float(m.group(3))
            found = True
    print(f"{total:.0f}" if found else "0")


def summary(results, env, out):
    rows = [line.rstrip("\n").split("\t") for line in open(results) if line.strip()]
    header = ["run", "ceiling", "client", "requests", "seconds", "req/s", "p50 ms", "p99 ms", "p99.9 ms",
              "errors", "non-2xx", "notes"]
    recs = [dict(zip(header, r)) for r in rows]
    by_name = {r["run"]: r for r in recs}
    lines = []
    lines.append("| run | client / TLS | req/s | vs empty | p50 ms | p99 ms | p99.9 ms | requests | errors | non-2xx | notes |")
    lines.append("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|---|")
    for r in recs:
        ceiling = by_name.get(r["ceiling"])
        ratio = "—"
        if ceiling and ceiling is not r and float(ceiling["req/s"]) > 0:
            ratio = f"{float(r['req/s']) / float(ceiling['req/s']):.2f}"
        elif ceiling is r:
            ratio = "1.00 (ceiling)"
        lines.append(
            f"| {r['run']} | {r['client']} | {r['req/s']} | {ratio} | {r['p50 ms']} | {r['p99 ms']} | "
            f"{r['p99.9 ms']} | {r['requests']} | {r['errors']} | {r['non-2xx']} | {r['notes']} |"
        )
    # Repeated pairs (LOAD_REPEAT): each scopegate#i against the empty#i run beside it.
    pairs = []
    for r in recs:
        if r["run"].startswith("scopegate#"):
            ceiling = by_name.get(r["ceiling"])
            if ceiling and float(ceiling["req/s"]) > 0:
                cpu = re.search(r"server CPU (\d+) µs per request", ceiling["notes"])
                pairs.append((float(r["req/s"]) / float(ceiling["req/s"]),
                              float(r["p99 ms"]), float(ceiling["p99 ms"]),
                              int(cpu.group(1)) if cpu else None))
    if pairs:
        ratios = sorted(p[0] for p in pairs)
        p99s = sorted(p[1] for p in pairs)
        empty_p99s = sorted(p[2] for p in pairs)
        mid = len(pairs) // 2
        lines.append("")
        lines.append(
            f"{len(pairs)} alternating scopegate/empty pairs: throughput vs empty "
            f"{' / '.join(f'{p[0]:.2f}' for p in pairs)} (median {ratios[mid]:.2f}); "
            f"p99 {' / '.join(f'{p[1]:.2f}' for p in pairs)} ms (median {p99s[mid]:.2f}; "
            f"empty median {empty_p99s[mid]:.2f})"
        )
        # The empty server's own CPU per request says how fast the machine ran (the figures
        # for quick and slow days are in benches/load/README.md). Parsed from the note that
        # run.sh writes for every run, so a run without it just leaves the line out.
        cpus = sorted(p[3] for p in pairs if p[3] is not None)
        if cpus:
            lines.append(
                f"machine speed: the empty server spent {cpus[len(cpus) // 2]} µs of CPU per request "
                f"(median of {len(cpus)}; see BENCHMARKS.md for how the ratio moves with it)"
            )
    table = "\n".join(lines)
    text = "# scopegate HTTP load\n\n" + open(env).read().strip() + "\n\n" + table + "\n"
    with open(out, "w") as f:
        f.write(text)
    print(table)


def main():
    cmd, *args = sys.argv[1:]
    {"wrk": parse_wrk, "oha": parse_oha, "metric": metric, "summary": summary}[cmd](*args)


if __name__ == "__main__":
    main()

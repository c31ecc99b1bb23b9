#!/usr/bin/env python3
"""Plots decision time against assignment count for scopegate, cedar-policy and regorus from
the criterion output of `cargo bench -F bench-support --bench peers` (target/criterion/peers-summary.csv) and
`cargo bench -F bench-support --bench decide` (target/criterion/decide_azure/*/<N>a_10g/new/estimates.json).
Writes benches/decision-time.png.  Needs matplotlib (`pip install matplotlib`)."""
import csv
import json
import pathlib
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

root = pathlib.Path(__file__).resolve().parent.parent
crit = root / "target" / "criterion"
case = sys.argv[1] if len(sys.argv) > 1 else "allow"
series = {}
with open(crit / "peers-summary.csv") as f:
    for row in csv.DictReader(f):
        if row["case"] == case and row["groups"] == "10":
            series.setdefault(row["engine"], {})[int(row["assignments"])] = float(row["median_ns"])
# scopegate at 1M comes from the decide bench (peers stop at 100k: cedar takes seconds there).
for est in sorted((crit / "decide_azure" / case).glob("*a_10g/new/estimates.json")):
    n = int(est.parent.parent.name.split("a_")[0])
    series.setdefault("scopegate (decide bench)", {})[n] = json.loads(est.read_text())["median"]["point_estimate"]

fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
for name, points in sorted(series.items()):
    xs = sorted(points)
    ax.plot(xs, [points[x] / 1000 for x in xs], marker="o", label=name)
ax.set_xscale("log")
ax.set_yscale("log")
ax.set_xlabel("role assignments in the policy")
ax.set_ylabel("median decision time (µs, log)")
ax.set_title(f"Azure RBAC decision ({case}, user in 10 groups), 2-core machine")
ax.grid(True, which="both", alpha=0.3)
ax.legend(loc="upper left")
out = root / "benches" / "decision-time.png"
fig.tight_layout()
fig.savefig(out)
print(f"wrote {out}")

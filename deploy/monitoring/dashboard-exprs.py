#!/usr/bin/env python3
"""Prints every PromQL expression of a Grafana dashboard as a Prometheus rule
file of recording rules, for `promtool check rules` (check.sh): a typo in a
panel query then fails CI instead of showing "No data".

Covers panel targets (rows included), query annotations, and the series
selectors of `label_values(...)` variables. Grafana's variables are replaced
by values PromQL accepts: $__rate_interval, $__interval and $__range by
durations, any other $var or ${var} (inside label matchers) by `.*`.

It also fails when a panel, target, annotation or variable names a data
source other than the `${datasource}` variable (no hard-coded uid), or the
dashboard has no `datasource` variable.
"""
import json
import re
import sys

DURATIONS = {"__rate_interval": "5m", "__interval": "1m", "__range": "1h", "__range_s": "3600"}
VAR = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)")


def substitute(expr):
    def repl(m):
        name = m.group(1) or m.group(2)
        return DURATIONS.get(name, ".*")
    return VAR.sub(repl, expr)


def yaml_str(s):
    # A JSON string is a valid YAML double-quoted scalar.
    return json.dumps(s)


def main(path):
    with open(path, encoding="utf-8") as f:
        dash = json.load(f)
    problems = []
    exprs = []  # (where, expr)

    def check_ds(where, ds):
        if ds is None:
            return
        if isinstance(ds, dict) and ds.get("type") == "grafana":
            return  # the built-in annotations
        uid = ds.get("uid") if isinstance(ds, dict) else ds
        if uid not in ("${datasource}", "$datasource"):
            problems.append(f"{where}: data source {ds!r} is not the ${{datasource}} variable")

    def walk(panels, prefix):
        for p in panels:
            where = f'{prefix}panel {p.get("id")} "{p.get("title", "")}"'
            check_ds(where, p.get("datasource"))
            for t in p.get("targets", []):
                check_ds(f'{where} target {t.get("refId")}', t.get("datasource"))
                if "expr" in t:
                    exprs.append((f'{where} target {t.get("refId")}', t["expr"]))
                elif p.get("type") != "row":
                    problems.append(f"{where} target {t.get('refId')}: no expr")
            walk(p.get("panels", []), prefix)

    walk(dash.get("panels", []), "")
    for a in dash.get("annotations", {}).get("list", []):
        check_ds(f'annotation "{a.get("name")}"', a.get("datasource"))
        if a.get("expr"):
            exprs.append((f'annotation "{a.get("name")}"', a["expr"]))
    variables = dash.get("templating", {}).get("list", [])
    if not any(v.get("type") == "datasource" and v.get("name") == "datasource"
               and v.get("query") == "prometheus" for v in variables):
        problems.append("no `datasource` variable of type datasource (query: prometheus)")
    for v in variables:
        if v.get("type") != "query":
            continue
        check_ds(f'variable {v.get("name")}', v.get("datasource"))
        q = v.get("query")
        q = q.get("query") if isinstance(q, dict) else q
        m = re.fullmatch(r"\s*label_values\((.*),\s*(\w+)\s*\)\s*", q or "")
        if m:
            exprs.append((f'variable {v.get("name")}', m.group(1)))
        elif q:
            problems.append(f'variable {v.get("name")}: query {q!r} is not label_values(selector, label)')

    if not exprs:
        problems.append("no expressions found")
    if problems:
        for p in problems:
            print(f"dashboard-exprs: {path}: {p}", file=sys.stderr)
        sys.exit(1)

    print(f"# Generated from {path} by dashboard-exprs.py: one recording rule per query.")
    print("groups:")
    print("  - name: dashboard")
    print("    rules:")
    for i, (where, expr) in enumerate(exprs):
        print(f"      # {where}")
        print(f"      - record: dashboard:query_{i}")
        print(f"        expr: {yaml_str(substitute(expr))}")
    print(f"dashboard-exprs: {len(exprs)} expressions from {path}", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "grafana-dashboard.json")

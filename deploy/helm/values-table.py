#!/usr/bin/env python3
"""Prints the chart README's values table from the `# --` comments of values.yaml.

    values-table.py scopegate/values.yaml

A key is documented by the `# -- ...` comment block right above it (continued by `# ...`
lines); a documented map documents its keys too. Exits 1 naming any value that no comment
covers, so every value stays documented.
"""

import json
import re
import sys

import yaml

path = sys.argv[1]
with open(path, encoding="utf-8") as f:
    text = f.read()
data = yaml.safe_load(text)

rows, undocumented = [], []


def _has(d, keys):
    for k in keys:
        if not isinstance(d, dict) or k not in d:
            return False
        d = d[k]
    return True


stack = []  # (indent, key, documented)
desc = None
for line in text.splitlines():
    stripped = line.strip()
    if stripped.startswith("# -- "):
        desc = [stripped[5:].strip()]
        continue
    if stripped.startswith("#"):
        if desc is not None:
            desc.append(stripped[1:].strip())
        continue
    if not stripped:
        desc = None
        continue
    m = re.match(r"^( *)([A-Za-z0-9_.-]+):( .*)?$", line)
    if not m or stripped.startswith("- "):
        continue
    indent = len(m.group(1))
    while stack and stack[-1][0] >= indent:
        stack.pop()
    key = m.group(2)
    keys = [k for _, k, _ in stack] + [key]
    if not _has(data, keys):
        continue  # a field of a list item (a toleration's key): part of the value above
    node = data
    for k in keys:
        node = node[k]
    covered = any(d for _, _, d in stack)
    if desc is not None:
        default = json.dumps(node, separators=(", ", ": "))
        if len(default) > 60:
            default = "see values.yaml"
        text_ = " ".join(desc).replace("|", "\\|")
        rows.append(f"| `{'.'.join(keys)}` | `{default}` | {text_} |")
    elif not covered and not isinstance(node, dict):
        undocumented.append(".".join(keys))
    stack.append((indent, key, desc is not None))
    desc = None

if undocumented:
    print("undocumented values: " + ", ".join(undocumented), file=sys.stderr)
    sys.exit(1)
print("| value | default | meaning |")
print("|---|---|---|")
print("\n".join(rows))

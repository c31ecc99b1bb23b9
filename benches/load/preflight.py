#!/usr/bin/env python3
"""Posts every body of BODIES.jsonl once to a running scopegate (HTTPS, mutual TLS when a
client certificate is given, one keep-alive connection) and prints the decision mix as one
line: `PREFLIGHT total=N allow=A deny=D no_opinion=O errors=E`. Also checks a few answers
the example policy fixes (finance developers, platform admins, the deny assignment), so a
load run never measures a server that answers wrongly.

  preflight.py URL BODIES.jsonl CA.crt [CLIENT.crt CLIENT.key]
"""

import http.client
import json
import ssl
import sys
import urllib.parse

FINANCE_DEVS = "6f0b7e4a-1c2d-4e5f-8a9b-000000000f1d"
PLATFORM_ADMINS = "9c8d7e6f-5a4b-4c3d-8e2f-00000000a11a"


def decision(status):
    if status.get("allowed"):
        return "allow"
    if status.get("denied"):
        return "deny"
    return "no_opinion"


def expected(spec):
    """The answers the example policy fixes, or None."""
    ra = spec.get("resourceAttributes") or {}
    groups = spec.get("groups") or []
    if PLATFORM_ADMINS in groups and ra:
        return "allow"
    if FINANCE_DEVS in groups and ra.get("namespace") == "finance-app":
        if ra.get("resource") == "secrets":
            return "deny"
        if ra.get("resource") in ("deployments", "pods", "configmaps"):
            return "allow"
    if ra.get("resource") == "secrets" and spec.get("extra", {}).get("oid"):
        return "deny"  # the deny assignment covers every Entra principal but platform admins
    return None


def main():
    url, bodies, ca = sys.argv[1:4]
    cert = sys.argv[4:6]
    u = urllib.parse.urlsplit(url)
    ctx = ssl.create_default_context(cafile=ca)
    if cert:
        ctx.load_cert_chain(cert[0], cert[1])
    conn = http.client.HTTPSConnection(u.hostname, u.port, context=ctx, timeout=10)
    counts = {"allow": 0, "deny": 0, "no_opinion": 0}
    errors = 0
    wrong = []
    with open(bodies) as f:
        lines = [line for line in f if line.strip()]
    for line in lines:
        conn.request("POST", u.path or "/authorize", body=line.encode(), headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        data = resp.read()
        if resp.status != 200:
            errors += 1
            if errors <= 3:
                print(f"preflight: HTTP {resp.status}: {data[:300]!r}", file=sys.stderr)
            continue
        d = decision(json.loads(data).get("status", {}))
        counts[d] += 1
        spec = json.loads(line)["spec"]
        want = expected(spec)
        if want is not None and want != d:
            wrong.append((want, d, spec))
    conn.close()
    print(
        f"PREFLIGHT total={len(lines)} allow={counts['allow']} deny={counts['deny']} "
        f"no_opinion={counts['no_opinion']} errors={errors} unexpected={len(wrong)}"
    )
    for want, got, spec in wrong[:5]:
        short = dict(spec, groups=f"<{len(spec.get('groups', []))} groups>")
        print(f"preflight: expected {want}, got {got}: {json.dumps(short)}", file=sys.stderr)
    missing = [k for k, v in counts.items() if v == 0]
    if errors or wrong or missing:
        if missing:
            print(f"preflight: no {', '.join(missing)} answers in the mix", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()

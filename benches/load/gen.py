#!/usr/bin/env python3
"""Inputs for benches/load/run.sh: an extra policy file and a set of real request bodies.

  gen.py policy OUT.json [--assignments N]   az-shaped role assignments (Reader) for
                                              random Entra-like group ids at scopes under
                                              the example cluster (the cluster and its
                                              namespaces)
  gen.py bodies OUT.jsonl [--count N]         SubjectAccessReview v1 bodies, one per line,
                                              shaped as kube-apiserver sends them
                                              (tests/fixtures/sar/captured-*.jsonl)
  gen.py reload OUT.json --every S --for T --tmp-dir D
                                              rewrites OUT.json every S seconds for T
                                              seconds (atomically: a temp file in D, outside
                                              the policy directory, then a rename), with
                                              content that changes each time, so every
                                              rewrite is a real reload

Deterministic: the same arguments give the same bytes. Only the standard library.
"""

import argparse
import json
import math
import os
import random
import sys
import time
import uuid

SUB = "3f2a6b1c-5d4e-4f70-8a9b-0c1d2e3f4a5b"
CLUSTER = (
    f"/subscriptions/{SUB}/resourceGroups/rg-platform/providers/"
    "Microsoft.ContainerService/managedClusters/aks-prod"
)
READER = "/providers/Microsoft.Authorization/roleDefinitions/7f6c6a51-bcf8-42ba-9220-52d62157d7db"
WRITER = (
    f"/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/"
    "a7ffa36f-339b-4b5c-8bdf-e2c188b2c0eb"
)

# The example policy's principals (policies/azure/role-assignments.json).
FINANCE_DEVS = "6f0b7e4a-1c2d-4e5f-8a9b-000000000f1d"  # Writer in finance-app
PLATFORM_ADMINS = "9c8d7e6f-5a4b-4c3d-8e2f-00000000a11a"  # Cluster Admin on rg-platform
FINANCE_VIEWERS = "4c3b2a19-0f8e-4d7c-9b6a-00000000f1e5"  # k8s RoleBinding view in finance-app
AUDITOR_OID = "2a3b4c5d-6e7f-4a8b-9c0d-0000000a0d17"  # Reader at mg-platform

NAMESPACES = 100
GROUP_POOL = 4000  # groups that hold the generated assignments
POOL_SEED = 6001


def guid(rng):
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def pool_groups():
    rng = random.Random(POOL_SEED)
    return [guid(rng) for _ in range(GROUP_POOL)]


def role_assignment(rng, principal, role, scope, description):
    name = guid(rng)
    return {
        "condition": None,
        "conditionVersion": None,
        "description": description,
        "id": f"{scope}/providers/Microsoft.Authorization/roleAssignments/{name}",
        "name": name,
        "principalId": principal,
        "principalName": "",
        "principalType": "Group",
        "roleDefinitionId": role,
        "roleDefinitionName": "Azure Kubernetes Service RBAC Reader",
        "scope": scope,
        "type": "Microsoft.Authorization/roleAssignments",
    }


def cmd_policy(args):
    rng = random.Random(args.seed)
    pool = pool_groups()
    out = []
    for i in range(args.assignments):
        principal = pool[rng.randrange(GROUP_POOL)]
        # Mostly namespaces; a few cluster-wide readers.
        if rng.random() < 0.05:
            scope = CLUSTER
        else:
            scope = f"{CLUSTER}/namespaces/ns-{rng.randrange(NAMESPACES)}"
        out.append(role_assignment(rng, principal, READER, scope, f"load-test reader {i}"))
    write_json(args.out, out)


def reload_file(g):
    """One Writer assignment whose principal changes with g, so every rewrite changes the
    policy fingerprint and the server really publishes a new generation."""
    rng = random.Random(1_000_000 + g)
    principal = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    a = role_assignment(rng, principal, WRITER, f"{CLUSTER}/namespaces/reload-{g % 7}", f"reload {g}")
    a["roleDefinitionName"] = "Azure Kubernetes Service RBAC Writer"
    return [a]


def cmd_reload(args):
    out = os.path.abspath(args.out)
    # The temp file lives outside the watched policy directory, on the same file system.
    tmp = os.path.join(os.path.abspath(args.tmp_dir), f".{os.path.basename(out)}.tmp")
    # Started before the measured run, so the interpreter's start-up (tens of ms of CPU on a
    # saturated machine) is not counted against the reloads; writes begin when told.
    waited = time.monotonic()
    while args.wait_for and not os.path.exists(args.wait_for):
        if time.monotonic() - waited > 600:
            sys.exit(f"reload: {args.wait_for} did not appear in 600 s")
        time.sleep(0.01)
    start = time.monotonic()
    g = 0
    while True:
        g += 1
        write_json(tmp, reload_file(g))
        os.replace(tmp, out)
        next_at = start + g * args.every
        if next_at - start >= args.seconds:
            break
        time.sleep(max(0.0, next_at - time.monotonic()))
    print(f"reload: rewrote {out} {g} times", file=sys.stderr)


def write_json(path, value):
    with open(path, "w") as f:
        json.dump(value, f, indent=1)
        f.write("\n")


# ---- request bodies ---------------------------------------------------------------------------

READ_VERBS = ["get", "list", "watch"]
RESOURCES = [
    ("", "pods"),
    ("", "configmaps"),
    ("", "services"),
    ("", "events"),
    ("apps", "deployments"),
    ("apps", "replicasets"),
    ("batch", "jobs"),
    ("networking.k8s.io", "ingresses"),
]
NON_RESOURCE = ["/api", "/apis", "/version", "/healthz", "/openapi/v2", "/apis/apps/v1"]


def n_groups(rng):
    """5 to 200 groups, log-uniform (most users in tens of groups, some in hundreds)."""
    return int(round(math.exp(rng.uniform(math.log(5), math.log(200)))))


class Users:
    """A fixed population of Entra users, each with an object id and a group list."""

    def __init__(self, rng, pool):
        self.rng = rng
        self.pool = pool
        self.cache = {}

    def user(self, kind, i):
        key = (kind, i)
        if key not in self.cache:
            rng = self.rng
            oid = guid(rng)
            n = n_groups(rng)
            special = {
                "finance": [FINANCE_DEVS],
                "viewer": [FINANCE_VIEWERS],
                "platform": [PLATFORM_ADMINS],
                "pool": [self.pool[rng.randrange(GROUP_POOL)] for _ in range(rng.randint(1, 3))],
                "nobody": [],
            }[kind]
            # Unrelated tenant groups fill up the rest.
            unrelated = [guid(rng) for _ in range(max(0, n - len(special)))]
            groups = unrelated + special
            rng.shuffle(groups)
            self.cache[key] = (f"{kind}-{i}@contoso.com", oid, groups[: max(n, len(special))])
        return self.cache[key]


def sar(user, groups, oid=None, resource=None, non_resource=None, uid=None):
    spec = {}
    if resource is not None:
        spec["resourceAttributes"] = resource
    if non_resource is not None:
        spec["nonResourceAttributes"] = non_resource
    spec["user"] = user
    spec["groups"] = list(groups) + ["system:authenticated"]
    if oid is not None:
        spec["extra"] = {"oid": [oid]}
    spec["uid"] = uid or f"uid-{user}"
    return {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "metadata": {},
        "spec": spec,
        "status": {"allowed": False},
    }


def res(verb, group, resource, namespace="", name="", sub=""):
    r = {"verb": verb, "version": "v1", "resource": resource}
    if group:
        r["group"] = group
    if namespace:
        r["namespace"] = namespace
    if name:
        r["name"] = name
    if sub:
        r["subresource"] = sub
    return r


def cmd_bodies(args):
    rng = random.Random(args.seed)
    users = Users(random.Random(args.seed + 1), pool_groups())
    bodies = []
    for _ in range(args.count):
        r = rng.random()
        ns_any = f"ns-{rng.randrange(NAMESPACES)}"
        if r < 0.20:
            # Finance developers: Writer in finance-app; secrets hit the deny assignment.
            name, oid, groups = users.user("finance", rng.randrange(40))
            choice = rng.random()
            if choice < 0.35:
                g, rs = rng.choice([("apps", "deployments"), ("", "pods"), ("", "configmaps")])
                resource = res(rng.choice(["create", "update", "patch", "get", "list"]), g, rs, "finance-app")
            elif choice < 0.55:
                resource = res(rng.choice(["get", "list"]), "", "secrets", "finance-app")
            elif choice < 0.75:
                resource = res("create", "", "pods", "finance-app", rng.choice(["web-0", "api-1"]), "exec")
            else:
                resource = res(rng.choice(READ_VERBS), "", "pods", rng.choice(["kube-system", ns_any]))
            bodies.append(sar(name, groups, oid, resource))
        elif r < 0.30:
            # Platform admins: Cluster Admin on the resource group, excluded from the deny.
            name, oid, groups = users.user("platform", rng.randrange(10))
            verb = rng.choice(["get", "list", "delete", "create", "update"])
            g, rs = rng.choice(RESOURCES + [("", "secrets"), ("rbac.authorization.k8s.io", "clusterrolebindings")])
            ns = "" if rs == "clusterrolebindings" else rng.choice(["kube-system", "finance-app", ns_any])
            bodies.append(sar(name, groups, oid, res(verb, g, rs, ns)))
        elif r < 0.62:
            # Users in 1-3 of the generated reader groups: read in namespaces (allow where a
            # group holds Reader, otherwise no opinion), write (no opinion), secrets (deny).
            name, oid, groups = users.user("pool", rng.randrange(400))
            choice = rng.random()
            g, rs = rng.choice(RESOURCES)
            if choice < 0.75:
                resource = res(rng.choice(READ_VERBS), g, rs, ns_any)
            elif choice < 0.9:
                resource = res(rng.choice(["create", "delete"]), g, rs, ns_any)
            else:
                resource = res("get", "", "secrets", ns_any, "db-password")
            bodies.append(sar(name, groups, oid, resource))
        elif r < 0.72:
            # Entra users with no assignment at all: no opinion.
            name, oid, groups = users.user("nobody", rng.randrange(200))
            g, rs = rng.choice(RESOURCES)
            bodies.append(sar(name, groups, oid, res(rng.choice(READ_VERBS + ["create"]), g, rs, ns_any)))
        elif r < 0.77:
            # finance-viewers: no Azure grant, a Kubernetes RoleBinding to `view` in finance-app.
            name, oid, groups = users.user("viewer", rng.randrange(20))
            g, rs = rng.choice(RESOURCES)
            bodies.append(sar(name, groups, oid, res(rng.choice(READ_VERBS), g, rs, "finance-app")))
        elif r < 0.82:
            # The auditor: Reader at the management group above the cluster's subscription.
            g, rs = rng.choice(RESOURCES + [("", "secrets")])
            bodies.append(
                sar(
                    "auditor@contoso.com",
                    [guid(rng) for _ in range(n_groups(rng))],
                    AUDITOR_OID,
                    res(rng.choice(READ_VERBS), g, rs, rng.choice(["", ns_any])),
                )
            )
        elif r < 0.90:
            # Discovery and other non-resource paths from Entra users.
            name, oid, groups = users.user(rng.choice(["pool", "nobody"]), rng.randrange(200))
            bodies.append(sar(name, groups, oid, non_resource={"path": rng.choice(NON_RESOURCE), "verb": "get"}))
        else:
            # Non-Entra callers with their real (few) groups: the pipeline service account
            # (Kubernetes Role in finance-app), control-plane components (bootstrap RBAC),
            # and an unknown service account.
            choice = rng.random()
            if choice < 0.4:
                user = "system:serviceaccount:finance-app:pipeline"
                groups = ["system:serviceaccounts", "system:serviceaccounts:finance-app"]
                resource = res(rng.choice(["get", "update", "patch", "create"]), "apps", "deployments", "finance-app")
            elif choice < 0.7:
                user = "system:kube-scheduler"
                groups = []
                resource = res(rng.choice(["list", "watch"]), "", rng.choice(["pods", "nodes", "services"]))
            else:
                user = f"system:serviceaccount:{ns_any}:default"
                groups = ["system:serviceaccounts", f"system:serviceaccounts:{ns_any}"]
                resource = res("list", "", "secrets", ns_any)
            bodies.append(sar(user, groups, None, resource))
    with open(args.out, "w") as f:
        for b in bodies:
            f.write(json.dumps(b, separators=(",", ":")))
            f.write("\n")
    sizes = sorted(len(json.dumps(b, separators=(",", ":"))) for b in bodies)
    groups = sorted(len(b["spec"]["groups"]) for b in bodies)
    print(
        f"{len(bodies)} bodies: {sizes[0]}..{sizes[-1]} bytes (median {sizes[len(sizes) // 2]}), "
        f"{groups[0]}..{groups[-1]} groups (median {groups[len(groups) // 2]})",
        file=sys.stderr,
    )


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("policy")
    a.add_argument("out")
    a.add_argument("--assignments", type=int, default=10_000)
    a.add_argument("--seed", type=int, default=7)
    a.set_defaults(func=cmd_policy)
    b = sub.add_parser("bodies")
    b.add_argument("out")
    b.add_argument("--count", type=int, default=2_000)
    b.add_argument("--seed", type=int, default=11)
    b.set_defaults(func=cmd_bodies)
    c = sub.add_parser("reload")
    c.add_argument("out")
    c.add_argument("--every", type=float, default=1.0)
    c.add_argument("--for", dest="seconds", type=float, default=10.0)
    c.add_argument("--tmp-dir", required=True, help="outside the policy directory, same file system")
    c.add_argument("--wait-for", help="start rewriting once this file exists")
    c.set_defaults(func=cmd_reload)
    args = p.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()

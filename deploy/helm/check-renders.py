#!/usr/bin/env python3
"""Asserts properties of the chart's renders that a template change could break.

    check-renders.py RENDER_DIR REPO_ROOT

RENDER_DIR holds one `helm template` output per value set of deploy/helm/ci/ (NAME.yaml), plus
`default.yaml` (no values) and `default-live.yaml` (liveSource.enabled). The expectations come
from the value files and from the tested manifests in deploy/kubernetes and deploy/static-pod,
never from the chart itself. Prints one line per failed check and exits 1 if any failed.
"""

import json
import os
import sys

import yaml

render_dir, repo = sys.argv[1], sys.argv[2]
failures = []
checks = 0


def check(cond, what):
    global checks
    checks += 1
    if not cond:
        failures.append(what)


def load_docs(path):
    with open(path, encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d]


def render(name):
    return load_docs(os.path.join(render_dir, name + ".yaml"))


def values(name):
    with open(os.path.join(repo, "deploy/helm/ci", name + ".yaml"), encoding="utf-8") as f:
        return yaml.safe_load(f) or {}


def kinds(docs, kind):
    return [d for d in docs if d.get("kind") == kind]


def one(docs, kind, name_suffix=None):
    found = [d for d in kinds(docs, kind) if name_suffix is None or d["metadata"]["name"].endswith(name_suffix)]
    check(len(found) == 1, f"expected one {kind} {name_suffix or ''}, found {len(found)}")
    return found[0] if found else {}


def container(pod_spec, name):
    for c in pod_spec.get("containers", []) + pod_spec.get("initContainers", []):
        if c["name"] == name:
            return c
    return {}


def args_of(c):
    return c.get("args", [])


def flag(c, name):
    prefix = name + "="
    vals = [a[len(prefix):] for a in args_of(c) if a.startswith(prefix)]
    return vals[0] if vals else None


def volume(pod_spec, name):
    return next((v for v in pod_spec.get("volumes", []) if v["name"] == name), {})


def mounts(c):
    return {m["mountPath"]: m for m in c.get("volumeMounts", [])}


def config_of(docs):
    cm = one(docs, "ConfigMap", "-config")
    return yaml.safe_load(cm.get("data", {}).get("scopegate.yaml", "")) or {}


def sync_config_of(docs):
    cm = one(docs, "ConfigMap", "-sync")
    return yaml.safe_load(cm.get("data", {}).get("sync.yaml", "")) or {}


with open(os.path.join(repo, "deploy/helm/scopegate/Chart.yaml"), encoding="utf-8") as f:
    app_version = yaml.safe_load(f)["appVersion"]
default_image = f"ghcr.io/scopegate/scopegate:{app_version}"

# Pieces of the tested manifests the chart must reproduce.
k8s = {}
for fname in os.listdir(os.path.join(repo, "deploy/kubernetes")):
    if fname.endswith(".yaml") and fname != "kustomization.yaml":
        for d in load_docs(os.path.join(repo, "deploy/kubernetes", fname)):
            k8s[(d["kind"], d["metadata"]["name"])] = d
ref_deploy = k8s[("Deployment", "scopegate")]
ref_pod = ref_deploy["spec"]["template"]["spec"]
ref_c = ref_pod["containers"][0]
ref_static = load_docs(os.path.join(repo, "deploy/static-pod/scopegate.yaml"))[0]
ref_config = yaml.safe_load(k8s[("ConfigMap", "scopegate-config")]["data"]["scopegate.yaml"])


def hardened(c, what):
    sc = c.get("securityContext", {})
    check(sc.get("readOnlyRootFilesystem") is True, f"{what}: readOnlyRootFilesystem")
    check(sc.get("allowPrivilegeEscalation") is False, f"{what}: allowPrivilegeEscalation false")
    check(sc.get("runAsNonRoot") is True, f"{what}: runAsNonRoot")
    check(sc.get("capabilities", {}).get("drop") == ["ALL"], f"{what}: capabilities drop ALL")
    check(sc.get("seccompProfile", {}).get("type") == "RuntimeDefault", f"{what}: seccomp RuntimeDefault")


def common_workload(name, docs, pod_spec, pod_labels):
    psc = pod_spec.get("securityContext", {})
    check(psc.get("runAsUser") == 65532 and psc.get("runAsGroup") == 65532, f"{name}: pod runs as 65532")
    check(psc.get("runAsNonRoot") is True, f"{name}: pod runAsNonRoot")
    check(psc.get("seccompProfile", {}).get("type") == "RuntimeDefault", f"{name}: pod seccomp")
    for c in pod_spec.get("containers", []) + pod_spec.get("initContainers", []):
        hardened(c, f"{name}/{c['name']}")
        check(c.get("image") == default_image, f"{name}/{c['name']}: image {c.get('image')} != {default_image}")
    sg = container(pod_spec, "scopegate")
    # The flags that make the webhook safe, as in deploy/kubernetes/deployment.yaml.
    for f in ("--tls-cert-file", "--tls-private-key-file", "--client-ca-file", "--allowed-client-names"):
        check(flag(sg, f) == flag(ref_c, f), f"{name}: {f}={flag(sg, f)} differs from deploy/kubernetes")
    check(args_of(sg)[:1] == ["serve"], f"{name}: scopegate runs serve")
    for probe, path in (("livenessProbe", "/livez"), ("readinessProbe", "/readyz")):
        check(sg.get(probe, {}).get("httpGet", {}).get("path") == path, f"{name}: {probe} on {path}")
    # The TLS files the flags name come from the projected volume.
    tls = volume(pod_spec, "tls").get("projected", {}).get("sources", [])
    paths = {i["path"]: (s["secret"]["name"], i["key"]) for s in tls for i in s["secret"]["items"]}
    check(set(paths) == {"tls.crt", "tls.key", "client-ca.crt"}, f"{name}: tls volume files {sorted(paths)}")
    check("/etc/scopegate/tls" in mounts(sg), f"{name}: tls mounted at /etc/scopegate/tls")
    # Every policy directory of the config file is a mount of the webhook container.
    cfg = config_of(docs)
    for p in cfg.get("policies", []):
        check(p in mounts(sg), f"{name}: policy directory {p} is not mounted in the webhook container")
    cfg_volume = volume(pod_spec, "config").get("configMap", {}).get("name")
    check(cfg_volume == one(docs, "ConfigMap", "-config").get("metadata", {}).get("name"), f"{name}: config volume")
    check(flag(sg, "--config") == "/etc/scopegate/config/scopegate.yaml", f"{name}: --config path")
    check("/etc/scopegate/config" in mounts(sg), f"{name}: config mount")
    # The ServiceAccount the pods use exists.
    sa_names = [d["metadata"]["name"] for d in kinds(docs, "ServiceAccount")]
    check(pod_spec.get("serviceAccountName") in sa_names, f"{name}: serviceAccountName not rendered")
    return sg, paths, cfg


def deployment_mode(name, docs, cluster_ip="10.96.0.50"):
    dep = one(docs, "Deployment")
    check(not kinds(docs, "DaemonSet") and not kinds(docs, "Pod"), f"{name}: only a Deployment")
    pod = dep["spec"]["template"]["spec"]
    labels = dep["spec"]["template"]["metadata"]["labels"]
    sel = dep["spec"]["selector"]["matchLabels"]
    check(all(labels.get(k) == v for k, v in sel.items()), f"{name}: Deployment selector matches its pods")
    check(dep["spec"].get("replicas") == ref_deploy["spec"]["replicas"], f"{name}: replicas")
    check(dep["spec"]["strategy"] == ref_deploy["spec"]["strategy"], f"{name}: rolling update as deploy/kubernetes")
    svc = one(docs, "Service")
    check(svc["spec"].get("clusterIP") == cluster_ip, f"{name}: Service clusterIP {svc['spec'].get('clusterIP')} != {cluster_ip}")
    check(svc["spec"]["selector"] == sel, f"{name}: Service selects the pods")
    ref_ports = {p["name"]: p for p in k8s[("Service", "scopegate")]["spec"]["ports"]}
    ports = {p["name"]: p for p in svc["spec"]["ports"]}
    sidecar = any(c["name"] == "sync" for c in pod["containers"])
    # The sync sidecar's admin port joins the Service's; the rest is deploy/kubernetes's.
    sync_port = ports.pop("sync-admin", None)
    check(ports == ref_ports, f"{name}: Service ports as deploy/kubernetes")
    check((sync_port is not None) == sidecar, f"{name}: a sync-admin Service port exactly with the sync sidecar")
    if sync_port is not None:
        check(sync_port["targetPort"] == "sync-admin", f"{name}: sync-admin targets the sidecar's port")
    pdb = one(docs, "PodDisruptionBudget")
    check(pdb["spec"].get("minAvailable") == 1, f"{name}: PDB minAvailable 1")
    check(pdb["spec"]["selector"]["matchLabels"] == sel, f"{name}: PDB selects the pods")
    check(pod.get("priorityClassName") == ref_pod["priorityClassName"], f"{name}: priorityClassName")
    check("podAntiAffinity" in pod.get("affinity", {}), f"{name}: podAntiAffinity")
    sg, paths, cfg = common_workload(name, docs, pod, labels)
    for f in ("--listen", "--admin-listen"):
        check(flag(sg, f) == flag(ref_c, f), f"{name}: {f}")
    for k in ("livenessProbe", "readinessProbe", "resources", "securityContext", "lifecycle"):
        check(sg.get(k) == ref_c.get(k), f"{name}: {k} differs from deploy/kubernetes/deployment.yaml")
    check(pod["securityContext"] == ref_pod["securityContext"], f"{name}: pod securityContext")
    check({p["name"]: p["containerPort"] for p in sg["ports"]} == {p["name"]: p["containerPort"] for p in ref_c["ports"]},
          f"{name}: container ports")
    return dep, pod, sg, paths, cfg


rendered = sorted(f[:-5] for f in os.listdir(render_dir) if f.endswith(".yaml"))

# --- no values: the objects of deploy/kubernetes ------------------------------------------------
docs = render("default")
dep, pod, sg, paths, cfg = deployment_mode("default", docs)
check(paths["tls.crt"] == ("scopegate-tls", "tls.crt") and paths["client-ca.crt"] == ("scopegate-tls", "client-ca.crt"),
      "default: TLS from Secret scopegate-tls as deploy/kubernetes")
check(cfg.get("policies") == ref_config["policies"], "default: policies as deploy/kubernetes")
for k in ("noMatch", "principalClaim", "server"):
    check(cfg.get(k) == ref_config.get(k), f"default: config {k} as deploy/kubernetes")
check(not kinds(docs, "ClusterRole"), "default: no ClusterRole without liveSource")
check("--watch-cluster-rbac" not in args_of(sg), "default: no --watch-cluster-rbac")
pol = one(docs, "ConfigMap", "-policies")
with open(os.path.join(repo, "policies/azure/aks-builtin-roles.json"), encoding="utf-8") as f:
    builtin = json.load(f)
check(json.loads(pol.get("data", {}).get("aks-builtin-roles.json", "null")) == builtin,
      "default: the policy ConfigMap carries policies/azure/aks-builtin-roles.json")
check(not kinds(docs, "Certificate"), "default: no Certificate")
check("azure.workload.identity/use" not in dep["spec"]["template"]["metadata"]["labels"], "default: no workload identity label")

docs = render("default-live")
ref_cr = k8s[("ClusterRole", "scopegate:rbac-reader")]
cr = one(docs, "ClusterRole")
check(cr.get("rules") == ref_cr["rules"], "default-live: ClusterRole rules as rbac-live-source.yaml")
crb = one(docs, "ClusterRoleBinding")
sa = one(docs, "ServiceAccount")
check(crb.get("roleRef", {}).get("name") == cr["metadata"]["name"], "default-live: binding names the ClusterRole")
check(crb.get("subjects") == [{"kind": "ServiceAccount", "name": sa["metadata"]["name"], "namespace": "kube-system"}],
      "default-live: binding subject is the pods' ServiceAccount")
check("--watch-cluster-rbac" in args_of(container(one(docs, "Deployment")["spec"]["template"]["spec"], "scopegate")),
      "default-live: --watch-cluster-rbac")

# --- deployment + inline policy + separate client CA --------------------------------------------
name = "deployment-configmap"
docs, v = render(name), values(name)
dep, pod, sg, paths, cfg = deployment_mode(name, docs, v["service"]["clusterIP"])
check(paths["tls.key"] == (v["tls"]["existingSecret"], "tls.key"), f"{name}: serving Secret")
check(paths["client-ca.crt"] == (v["tls"]["clientCA"]["secretName"], v["tls"]["clientCA"]["key"]), f"{name}: client CA Secret/key")
pol = one(docs, "ConfigMap", "-policies")
check(set(pol.get("data", {})) == {"aks-builtin-roles.json"} | set(v["policy"]["files"]), f"{name}: policy keys")
check(volume(pod, "policies").get("configMap", {}).get("name") == pol["metadata"]["name"], f"{name}: policies volume")
check(cfg.get("clusterResourceId") == v["config"]["clusterResourceId"], f"{name}: clusterResourceId")
tsc = pod.get("topologySpreadConstraints", [{}])[0]
check(tsc.get("labelSelector", {}).get("matchLabels") == dep["spec"]["selector"]["matchLabels"], f"{name}: spread labelSelector filled in")
check(len(kinds(docs, "ClusterRoleBinding")) == 1, f"{name}: live-source binding")

# --- sidecar sync with workload identity ---------------------------------------------------------
name = "sync-sidecar-workload-identity"
docs, v = render(name), values(name)
dep, pod, sg, paths, cfg = deployment_mode(name, docs)
labels = dep["spec"]["template"]["metadata"]["labels"]
check(labels.get("azure.workload.identity/use") == "true", f"{name}: pod label azure.workload.identity/use")
ann = one(docs, "ServiceAccount")["metadata"].get("annotations", {})
check(ann.get("azure.workload.identity/client-id") == v["workloadIdentity"]["clientId"], f"{name}: SA client-id")
check(ann.get("azure.workload.identity/tenant-id") == v["workloadIdentity"]["tenantId"], f"{name}: SA tenant-id")
check([c["name"] for c in pod["containers"]] == ["scopegate", "sync"], f"{name}: webhook and sync containers")
sync = container(pod, "sync")
init = container(pod, "initial-sync")
check(args_of(sync)[:1] == ["sync"] and "--once" not in args_of(sync), f"{name}: sidecar runs sync as a loop")
check(flag(sync, "--interval") == v["sync"]["interval"], f"{name}: --interval")
check(flag(sync, "--admin-address") == "0.0.0.0:9091", f"{name}: sidecar admin address")
check(sync.get("livenessProbe", {}).get("httpGet", {}).get("path") == "/livez", f"{name}: sidecar liveness /livez")
check("readinessProbe" not in sync, f"{name}: no sidecar readiness probe (a failing source must not unready the webhook)")
check(args_of(init)[:1] == ["sync"] and "--once" in args_of(init), f"{name}: initial sync --once")
check(flag(sync, "--config") == flag(init, "--config"), f"{name}: same sync config")
# No secret in the pod: the workload identity webhook injects the AZURE_* variables.
for c in pod["containers"] + pod.get("initContainers", []):
    check(not [e for e in c.get("env", []) if e["name"].startswith("AZURE_")], f"{name}/{c['name']}: no AZURE_* env from the chart")
sc = sync_config_of(docs)
check(sc.get("arm", {}).get("scopes") == v["sync"]["arm"]["scopes"], f"{name}: arm scopes")
check(sc.get("graph") == {}, f"{name}: graph present")
check("credential" not in sc, f"{name}: no credential with workload identity")
check(any(sc.get("output", "").startswith(p.rstrip("/") + "/") for p in cfg["policies"]),
      f"{name}: sync output {sc.get('output')} below a --policies directory {cfg['policies']}")
synced = volume(pod, "synced")
check("emptyDir" in synced, f"{name}: synced is an emptyDir")
sync_dir = next((p for p in cfg["policies"] if sc.get("output", "").startswith(p + "/")), None)
check(mounts(sg).get(sync_dir, {}).get("readOnly") is True, f"{name}: webhook mounts the synced dir read-only")
check(mounts(sync).get(sync_dir, {}).get("name") == "synced" and not mounts(sync)[sync_dir].get("readOnly"),
      f"{name}: sidecar mounts the synced dir writable")
check(mounts(init).get(sync_dir, {}).get("name") == "synced", f"{name}: initial sync writes the synced dir")
cfg_path = os.path.dirname(flag(sync, "--config"))
check(volume(pod, mounts(sync).get(cfg_path, {}).get("name", "")).get("configMap", {}).get("name")
      == one(docs, "ConfigMap", "-sync")["metadata"]["name"], f"{name}: sync config mounted from its ConfigMap")

# --- in-process sync with the client-secret fallback --------------------------------------------
name = "sync-inprocess-secret"
docs, v = render(name), values(name)
dep, pod, sg, paths, cfg = deployment_mode(name, docs)
check([c["name"] for c in pod["containers"]] == ["scopegate"] and not pod.get("initContainers"), f"{name}: only the webhook container")
check(flag(sg, "--sync-config") == "/etc/scopegate/sync/sync.yaml", f"{name}: serve --sync-config")
env = {e["name"]: e.get("value") for e in sg.get("env", [])}
check(env.get("AZURE_CLIENT_ID") == v["sync"]["credential"]["clientId"], f"{name}: AZURE_CLIENT_ID")
check(env.get("AZURE_TENANT_ID") == v["sync"]["credential"]["tenantId"], f"{name}: AZURE_TENANT_ID")
sc = sync_config_of(docs)
secret_file = sc.get("credential", {}).get("clientSecretFile", "")
cred_mount = mounts(sg).get(os.path.dirname(secret_file), {})
check(volume(pod, cred_mount.get("name", "")).get("secret", {}).get("secretName") == v["sync"]["credential"]["existingSecret"],
      f"{name}: clientSecretFile {secret_file} is in the mounted credential Secret")
check(os.path.basename(secret_file) == v["sync"]["credential"]["key"], f"{name}: the Secret's key")
check("azure.workload.identity/use" not in dep["spec"]["template"]["metadata"]["labels"], f"{name}: no workload identity label")
check(not one(docs, "ServiceAccount")["metadata"].get("annotations"), f"{name}: no workload identity annotation")
sync_dir = next((p for p in cfg["policies"] if sc.get("output", "").startswith(p + "/")), None)
check(sync_dir and not mounts(sg).get(sync_dir, {}).get("readOnly"), f"{name}: webhook writes the synced dir itself")

# --- cert-manager with the chart's CA -----------------------------------------------------------
name = "cert-manager"
docs, v = render(name), values(name)
dep, pod, sg, paths, cfg = deployment_mode(name, docs)
issuers = {d["metadata"]["name"]: d["spec"] for d in kinds(docs, "Issuer")}
certs = {d["metadata"]["name"]: d["spec"] for d in kinds(docs, "Certificate")}
serving = next((c for c in certs.values() if "server auth" in c.get("usages", [])), {})
client = next((c for c in certs.values() if "client auth" in c.get("usages", [])), {})
ca = next((c for c in certs.values() if c.get("isCA")), {})
check("10.96.0.50" in serving.get("ipAddresses", []), f"{name}: serving certificate has the ClusterIP SAN")
check("scopegate.kube-system.svc" in serving.get("dnsNames", []), f"{name}: serving certificate has the Service DNS name")
check(paths["tls.crt"][0] == serving.get("secretName") and paths["client-ca.crt"] == (serving.get("secretName"), "ca.crt"),
      f"{name}: pod mounts the serving Secret and its ca.crt as client CA")
check(client.get("commonName") == "kube-apiserver", f"{name}: client certificate CN kube-apiserver")
ca_issuer = serving.get("issuerRef", {}).get("name")
check(client.get("issuerRef") == serving.get("issuerRef"), f"{name}: both certificates from one issuer")
check(issuers.get(ca_issuer, {}).get("ca", {}).get("secretName") == ca.get("secretName"), f"{name}: CA Issuer uses the CA certificate")
check(issuers.get(ca.get("issuerRef", {}).get("name"), {}).get("selfSigned") == {}, f"{name}: CA signed by the self-signed Issuer")
check(volume(pod, "policies").get("configMap", {}).get("name") == v["policy"]["existingConfigMap"], f"{name}: existing policy ConfigMap")
check(not [d for d in kinds(docs, "ConfigMap") if d["metadata"]["name"].endswith("-policies")], f"{name}: no chart policy ConfigMap")

# --- controlPlane DaemonSet with the sync sidecar -----------------------------------------------
for name in ("control-plane", "cert-manager-issuer"):
    docs, v = render(name), values(name)
    ds = one(docs, "DaemonSet")
    check(not kinds(docs, "Deployment") and not kinds(docs, "Service") and not kinds(docs, "PodDisruptionBudget")
          and not kinds(docs, "Pod"), f"{name}: only a DaemonSet, no Service/PDB")
    pod = ds["spec"]["template"]["spec"]
    sg, paths, cfg = common_workload(name, docs, pod, ds["spec"]["template"]["metadata"]["labels"])
    check(pod.get("hostNetwork") is True, f"{name}: hostNetwork")
    ref_s = ref_static["spec"]["containers"][0]
    for f in ("--listen", "--admin-listen"):
        check(flag(sg, f) == flag(ref_s, f), f"{name}: {f}={flag(sg, f)} as deploy/static-pod")
    for probe in ("livenessProbe", "readinessProbe"):
        check(sg.get(probe) == ref_s.get(probe), f"{name}: {probe} as deploy/static-pod (loopback)")
    check(pod.get("nodeSelector") == {"node-role.kubernetes.io/control-plane": ""}, f"{name}: control-plane nodeSelector")
    check(any(t.get("key") == "node-role.kubernetes.io/control-plane" for t in pod.get("tolerations", [])), f"{name}: toleration")
    check(pod.get("priorityClassName") == "system-node-critical", f"{name}: system-node-critical")
name = "control-plane"
pod = one(render(name), "DaemonSet")["spec"]["template"]["spec"]
check(flag(container(pod, "sync"), "--admin-address") == "127.0.0.1:9091", f"{name}: sidecar admin on loopback")
check(container(pod, "sync").get("livenessProbe", {}).get("httpGet", {}).get("host") == "127.0.0.1", f"{name}: sidecar probe on loopback")
name = "cert-manager-issuer"
docs, v = render(name), values(name)
check(not kinds(docs, "Issuer"), f"{name}: no chart Issuer with issuerRef")
certs = {d["metadata"]["name"]: d["spec"] for d in kinds(docs, "Certificate")}
serving = next((c for c in certs.values() if "server auth" in c.get("usages", [])), {})
check(serving.get("ipAddresses") == ["127.0.0.1"], f"{name}: serving certificate for 127.0.0.1")
check("scopegate.example.com" in serving.get("dnsNames", []), f"{name}: extra DNS name")
check(all(c.get("issuerRef", {}).get("kind") == "ClusterIssuer" and c["issuerRef"].get("name") == "platform-ca"
          for c in certs.values()) and certs, f"{name}: certificates from the given ClusterIssuer")

# --- staticPod: the manifest of deploy/static-pod -----------------------------------------------
for name in ("static-pod", "static-pod-show-only"):
    docs = render(name)
    check([d["kind"] for d in docs] == ["Pod"], f"{name}: only a Pod renders, got {[d['kind'] for d in docs]}")
    p = docs[0] if docs else {}
    got = p.get("spec", {})
    want = ref_static["spec"]
    gc, wc = (got.get("containers") or [{}])[0], want["containers"][0]
    for k in ("hostNetwork", "priorityClassName", "priority", "securityContext", "volumes"):
        check(got.get(k) == want.get(k), f"{name}: spec.{k} differs from deploy/static-pod/scopegate.yaml")
    for k in ("args", "ports", "livenessProbe", "readinessProbe", "resources", "securityContext", "volumeMounts"):
        check(gc.get(k) == wc.get(k), f"{name}: container {k} differs from deploy/static-pod/scopegate.yaml")
    check(p.get("metadata", {}).get("namespace") == "kube-system", f"{name}: namespace kube-system")
    lbl = p.get("metadata", {}).get("labels", {})
    check(lbl.get("tier") == "control-plane" and lbl.get("component") == "scopegate", f"{name}: control-plane labels")
check(render("static-pod")[0]["spec"]["containers"][0]["image"].startswith("ghcr.io/scopegate/scopegate@sha256:"),
      "static-pod: image pinned by digest")

for f in failures:
    print(f"FAIL  {f}")
print(f"[helm] render checks: {checks - len(failures)} passed, {len(failures)} failed ({len(rendered)} renders)", file=sys.stderr)
sys.exit(1 if failures else 0)

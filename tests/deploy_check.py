"""Checks the deployment files: every YAML parses, and the fields that matter agree with the
config, the Dockerfile and each other. Prints one JSON object with what the Rust test asserts on.
Run from the repository root: python3 tests/deploy_check.py"""
import glob
import json
import re
import sys

import yaml

problems = []
docs = {}
for path in sorted(glob.glob("deploy/**/*.yaml", recursive=True)) + sorted(glob.glob("deploy/**/*.yml", recursive=True)):
    with open(path) as f:
        try:
            loaded = [d for d in yaml.safe_load_all(f) if d is not None]
        except yaml.YAMLError as e:
            problems.append(f"{path}: does not parse: {e}")
            continue
    docs[path] = loaded

def find(kind):
    return [d for ds in docs.values() for d in ds if isinstance(d, dict) and d.get("kind") == kind]

def check(ok, message):
    if not ok:
        problems.append(message)

dockerfile = open("deploy/Dockerfile").read()
user = re.search(r"^USER\s+(\S+)", dockerfile, re.M)
check(user is not None and user.group(1) not in ("root", "0"), "Dockerfile: the image must run as a non-root USER")
image_uid = int(user.group(1)) if user and user.group(1).isdigit() else None
check("HEALTHCHECK" in dockerfile and "/healthz" in dockerfile, "Dockerfile: HEALTHCHECK on /healthz")
check(re.search(r"^VOLUME\s+/var/lib/consentry", dockerfile, re.M) is not None, "Dockerfile: data_dir is a VOLUME")

deployments = find("Deployment")
check(len(deployments) == 1, "k8s: exactly one Deployment")
dep = deployments[0] if deployments else {}
spec = dep.get("spec", {})
pod = spec.get("template", {}).get("spec", {})
container = (pod.get("containers") or [{}])[0]
ports = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
configmap = (find("ConfigMap") or [{}])[0]
config_text = configmap.get("data", {}).get("consentry.toml", "")
listen = dict(re.findall(r'^\[(proxy|admin|public)\]\s*\nlisten = "[^"]*:(\d+)"', config_text, re.M))
for name in ("proxy", "admin", "public"):
    check(str(ports.get(name)) == listen.get(name), f"k8s: container port {name} {ports.get(name)} != config {listen.get(name)}")
probes = {}
for probe in ("readinessProbe", "livenessProbe"):
    get = container.get(probe, {}).get("httpGet", {})
    check(get.get("port") == "admin", f"k8s: {probe} must use the admin port")
    probes[probe] = get.get("path")
security = pod.get("securityContext", {})
check(security.get("runAsNonRoot") is True, "k8s: runAsNonRoot")
check(image_uid is None or security.get("runAsUser") == image_uid, "k8s: runAsUser matches the image's USER")
check(container.get("securityContext", {}).get("readOnlyRootFilesystem") is True, "k8s: readOnlyRootFilesystem")
check(container.get("securityContext", {}).get("allowPrivilegeEscalation") is False, "k8s: no privilege escalation")
check(spec.get("replicas", 0) >= 2, "k8s: at least 2 replicas")
res = container.get("resources", {})
check("requests" in res and "limits" in res, "k8s: resource requests and limits")
labels = spec.get("selector", {}).get("matchLabels", {})
for svc in find("Service"):
    check(svc["spec"].get("selector") == labels, f"k8s: Service {svc['metadata']['name']} selects the Deployment's pods")
    for p in svc["spec"]["ports"]:
        check(p["targetPort"] in ports, f"k8s: Service port {p['name']} targets a named container port")
service_ports = sorted(p["port"] for s in find("Service") for p in s["spec"]["ports"])
hpa = (find("HorizontalPodAutoscaler") or [{}])[0]
check(hpa.get("spec", {}).get("scaleTargetRef", {}).get("name") == dep.get("metadata", {}).get("name"), "k8s: HPA targets the Deployment")
check(hpa.get("spec", {}).get("minReplicas", 0) >= 2, "k8s: HPA keeps at least 2 replicas")
pdb = (find("PodDisruptionBudget") or [{}])[0]
check(pdb.get("spec", {}).get("selector", {}).get("matchLabels") == labels, "k8s: PDB selects the Deployment's pods")
policy = (find("NetworkPolicy") or [{}])[0]
policy_ports = sorted(p["port"] for rule in policy.get("spec", {}).get("ingress", []) for p in rule.get("ports", []))
check(policy_ports == sorted(int(v) for v in listen.values()), "k8s: NetworkPolicy covers exactly the three listeners")
for kind in ("Namespace", "Secret"):
    check(len(find(kind)) == 1, f"k8s: one {kind}")
secret_keys = set((find("Secret") or [{}])[0].get("stringData", {}))
check({"ca.pem", "ca.key.pem", "admin-token", "database-url", "tlog-key.pem"} <= secret_keys,
      "k8s: the Secret holds the CA, admin token, database URL and transparency-log key")
env = {e["name"]: e.get("value") for e in container.get("env", [])}
mounted = {item["path"]: mount["mountPath"] for mount in container.get("volumeMounts", [])
           for volume in spec.get("template", {}).get("spec", {}).get("volumes", []) if volume["name"] == mount["name"]
           for item in volume.get("secret", {}).get("items", [])}
check(env.get("CONSENTRY_TLOG__KEY_FILE") == f"{mounted.get('tlog-key.pem')}/tlog-key.pem",
      f"k8s: every pod signs with the Secret's tlog-key.pem: {env.get('CONSENTRY_TLOG__KEY_FILE')} vs {mounted}")

compose = docs.get("deploy/compose.yaml", [{}])[0]
services = compose.get("services", {})
nodes = [n for n, s in services.items() if "CONSENTRY_STORAGE__URL" in (s.get("environment") or {})]
check(len(nodes) >= 2, "compose: at least two Consentry nodes")
check(all(services[n]["environment"]["CONSENTRY_STORAGE__URL"].startswith("postgres://") for n in nodes), "compose: nodes use PostgreSQL")
check("postgres" in services, "compose: a PostgreSQL service")
origins = {services[n]["environment"].get("CONSENTRY_TLOG__ORIGIN") for n in nodes}
check(len(origins) == 1 and None not in origins, f"compose: every node names the one transparency log: {origins}")
prometheus = docs.get("deploy/compose/prometheus.yml", [{}])[0]
targets = [t for job in prometheus.get("scrape_configs", []) for sc in job.get("static_configs", []) for t in sc["targets"]]
check(sorted(targets) == sorted(f"{n}:{listen.get('admin')}" for n in nodes), "compose: Prometheus scrapes every node's admin port")
haproxy = open("deploy/compose/haproxy.cfg").read()
for n in nodes:
    check(f"server {n} {n}:{listen.get('proxy')}" in haproxy, f"compose: the balancer sends proxy traffic to {n}")

print(json.dumps({
    "files": sorted(docs),
    "probes": probes,
    "ports": ports,
    "service_ports": service_ports,
    "image_uid": image_uid,
    "nodes": nodes,
    "problems": problems,
}))
sys.exit(1 if problems else 0)

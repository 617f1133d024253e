#!/usr/bin/env bash
# Checks deploy/kubernetes.yaml without a cluster: every resource against the Kubernetes JSON
# schemas with kubernetes-validate (PyPI, which ships the schemas; --strict rejects unknown
# fields, so a misspelt probe fails), then what a schema cannot see: selectors that match their
# pods, the image's roles and port, probes on /healthz, one environment for every role.
set -euo pipefail
cd "$(dirname "$0")/.."

manifest="${1:-deploy/kubernetes.yaml}"
venv="${CARGO_TARGET_DIR:-target}/check-kubernetes-venv"
requirements=deploy/check-kubernetes.requirements.txt
stamp="$venv/.requirements"
if ! cmp -s "$requirements" "$stamp" 2>/dev/null; then
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
    cp "$requirements" "$stamp"
fi

echo "== kubernetes-validate --strict $manifest"
"$venv/bin/kubernetes-validate" --strict --kubernetes-version 1.37.0 "$manifest"

echo "== roles, selectors and probes"
"$venv/bin/python" - "$manifest" <<'EOF'
import sys
import yaml

docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
by_kind = {}
for doc in docs:
    by_kind.setdefault(doc["kind"], {})[doc["metadata"]["name"]] = doc
problems = []

def check(ok, message):
    if not ok:
        problems.append(message)

deployments = by_kind.get("Deployment", {})
check(set(deployments) == {"sbm-web", "sbm-worker"}, f"Deployments: {sorted(deployments)}")

def pod_spec(doc):
    return doc["spec"]["template"]["spec"]

def only_container(doc):
    containers = pod_spec(doc)["containers"]
    check(len(containers) == 1, f"{doc['metadata']['name']}: one container expected")
    return containers[0]

images = set()
for name, doc in deployments.items():
    labels = doc["spec"]["template"]["metadata"]["labels"]
    selector = doc["spec"]["selector"]["matchLabels"]
    check(selector.items() <= labels.items(), f"{name}: selector {selector} misses its pods")
    check(pod_spec(doc)["securityContext"].get("runAsNonRoot") is True, f"{name}: runAsNonRoot")
for doc in list(deployments.values()) + list(by_kind.get("Job", {}).values()):
    container = only_container(doc)
    images.add(container["image"])
    sources = [next(iter(s.values()))["name"] for s in container.get("envFrom", [])]
    check(sources == ["sbm", "sbm"], f"{doc['metadata']['name']}: envFrom {sources}")
check(len(images) == 1, f"one image for every role: {images}")

web = only_container(deployments["sbm-web"])
check(web["args"] == ["serve", "--no-worker"], f"web args {web['args']}")
port = {p["name"]: p["containerPort"] for p in web["ports"]}
check(port == {"http": 8000}, f"web ports {port} (the image serves on 8000)")
check(web["readinessProbe"]["httpGet"]["path"] == "/healthz", "web readiness on /healthz")
check("livenessProbe" in web, "web liveness probe")
worker = only_container(deployments["sbm-worker"])
check(worker["args"] == ["worker"], f"worker args {worker['args']}")
check("ports" not in worker, "the worker serves no port")
migrate = only_container(by_kind["Job"]["sbm-migrate"])
check(migrate["args"] == ["migrate"], f"migrate args {migrate['args']}")

config = by_kind["ConfigMap"]["sbm"]["data"]
check(config.get("SBM_NO_MIGRATE") == "true", "Deployments leave migrations to the Job")
check("STAGE_BASED_MESSAGING_URL" in config, "the public URL is set (workers need it)")

services = by_kind.get("Service", {})
check(list(services) == ["sbm"], f"Services: {list(services)}")
service = services["sbm"]["spec"]
web_labels = deployments["sbm-web"]["spec"]["template"]["metadata"]["labels"]
check(service["selector"].items() <= web_labels.items(), "the Service selects the web pods")
worker_labels = deployments["sbm-worker"]["spec"]["template"]["metadata"]["labels"]
check(not service["selector"].items() <= worker_labels.items(), "the Service skips workers")
check(all(p["targetPort"] in ("http", 8000) for p in service["ports"]), "Service target port")

claims = {v["persistentVolumeClaim"]["claimName"]
          for v in pod_spec(deployments["sbm-web"]).get("volumes", [])
          if "persistentVolumeClaim" in v}
check(claims <= set(by_kind.get("PersistentVolumeClaim", {})), f"undefined claims {claims}")

for problem in problems:
    print("FAIL", problem)
if problems:
    sys.exit(1)
names = ", ".join(doc["kind"] + "/" + doc["metadata"]["name"] for doc in docs)
print(f"ok   {len(docs)} resources: {names}")
EOF

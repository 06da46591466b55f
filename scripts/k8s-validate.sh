#!/usr/bin/env bash
# Validates deploy/kubernetes/ against the Kubernetes JSON schemas, offline
# (no cluster is reachable from CI): kubernetes-validate from PyPI, pinned,
# in its own venv, with --strict (unknown fields are errors).
#
#   scripts/k8s-validate.sh
#
# Checks every manifest file the kustomization lists, that the kustomization
# lists every manifest in the directory and sets the image the StatefulSet
# names, and — when `kubectl` is on PATH (its built-in kustomize needs no
# cluster) — the rendered `kubectl kustomize` output as well.
#
# Environment:
#   K8S_VERSION     schema version to validate against (default 1.31.0)
#   K8S_VALIDATE_VENV  where the venv goes (default ./target/k8s-validate-venv)
set -euo pipefail
cd "$(dirname "$0")/.."

KV_VERSION=1.37.0
K8S_VERSION=${K8S_VERSION:-1.31.0}
VENV=${K8S_VALIDATE_VENV:-$PWD/target/k8s-validate-venv}
DIR=deploy/kubernetes

if ! "$VENV/bin/kubernetes-validate" --version 2>/dev/null | grep -q "$KV_VERSION"; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check "kubernetes-validate==$KV_VERSION"
fi
KV=("$VENV/bin/kubernetes-validate" --strict --kubernetes-version "$K8S_VERSION")

# The kustomization's resources are exactly the manifests in the directory,
# and its image entry is the one the StatefulSet uses.
mapfile -t FILES < <("$VENV/bin/python" - "$DIR" <<'PY'
import pathlib, sys, yaml
d = pathlib.Path(sys.argv[1])
k = yaml.safe_load((d / "kustomization.yaml").read_text())
listed = set(k["resources"])
present = {p.name for p in d.glob("*.yaml")} - {"kustomization.yaml"}
if listed != present:
    sys.exit(f"kustomization.yaml lists {sorted(listed)}, the directory holds {sorted(present)}")
images = {i["name"] for i in k.get("images", [])}
for doc in yaml.safe_load_all((d / "statefulset.yaml").read_text()):
    for c in doc["spec"]["template"]["spec"]["containers"]:
        if c["image"].split(":")[0] not in images:
            sys.exit(f"the StatefulSet's image {c['image']!r} is not set by kustomization.yaml")
for name in sorted(listed):
    print(d / name)
PY
)
echo "kubernetes-validate $KV_VERSION, schemas of Kubernetes $K8S_VERSION, --strict"
"${KV[@]}" "${FILES[@]}"

if command -v kubectl >/dev/null; then
  out=$(mktemp --suffix=.yaml)
  trap 'rm -f "$out"' EXIT
  kubectl kustomize "$DIR" >"$out"
  echo "rendered kustomization ($(grep -c '^kind:' "$out") resources):"
  "${KV[@]}" "$out"
else
  echo "kubectl not on PATH: the rendered kustomization was not validated (the files above were)"
fi

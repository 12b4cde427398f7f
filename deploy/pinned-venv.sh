#!/usr/bin/env bash
# Sourced by the scripts that run pinned Python tools (deploy/validate.sh,
# deploy/github-action/lint.sh):
#   pinned_venv VENV REQUIREMENT…
# creates the virtual environment VENV if it is missing and installs the requirements (exact
# `name==version` pins) that are missing or at another version, so a second run downloads nothing.
pinned_venv() {
    local venv=$1
    shift
    [[ -x "$venv/bin/python" ]] || python3 -m venv "$venv"
    local installed req normal missing=()
    installed=$("$venv/bin/python" -m pip freeze --all 2>/dev/null | tr '[:upper:]_' '[:lower:]-')
    for req in "$@"; do
        normal=$(tr '[:upper:]_' '[:lower:]-' <<<"$req")
        grep -qxF "$normal" <<<"$installed" || missing+=("$req")
    done
    if ((${#missing[@]})); then
        echo "installing into $venv: ${missing[*]}" >&2
        "$venv/bin/python" -m pip install -q --disable-pip-version-check "$@"
    fi
}

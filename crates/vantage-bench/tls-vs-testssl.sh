#!/usr/bin/env bash
# `vantage scan --profile deep` beside testssl.sh on the same loopback TLS server, for the same
# protocol and cipher facts: wall time and peak RSS of each whole process (GNU time), RUNS runs
# each, alternating. The server is GnuTLS's gnutls-serv with its defaults (TLS 1.2 and 1.3, RSA
# 2048) answering HTTP (--http), so both tools see a web server. (OpenSSL's s_server -www serves one
# connection at a time, which serialises any client that opens several.)
#
#   bash crates/vantage-bench/tls-vs-testssl.sh target/release/vantage [RUNS]
set -euo pipefail
# shellcheck source=crates/vantage-bench/alternate.sh
source "$(dirname "$0")/alternate.sh"
VANTAGE=${1:?the vantage binary}
RUNS=${2:-5}
DIR=$(mktemp -d)
trap 'kill "$SERVER" 2>/dev/null || true; rm -rf "$DIR"' EXIT
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=lab.test \
    -keyout "$DIR/key.pem" -out "$DIR/cert.pem" >/dev/null 2>&1
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
gnutls-serv --quiet --http -p "$PORT" --x509certfile="$DIR/cert.pem" --x509keyfile="$DIR/key.pem" \
    </dev/null >/dev/null 2>&1 &
SERVER=$!
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.05; done

declare -A COMMANDS=(
    [vantage]="$VANTAGE scan https://127.0.0.1:$PORT/ --ports $PORT --profile deep --allow-cidr 127.0.0.1/32 --json"
    [testssl-p-e]="testssl --warnings off --quiet --color 0 -p -e 127.0.0.1:$PORT"
    [testssl-full]="testssl --warnings off --quiet --color 0 127.0.0.1:$PORT"
)
ORDER=(vantage testssl-p-e testssl-full)
time_alternating "$RUNS" "$DIR"

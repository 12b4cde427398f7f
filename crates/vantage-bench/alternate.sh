# shellcheck shell=bash
# Times whole commands, alternating, and prints a Markdown table: sourced by the comparison scripts
# of this directory. The caller defines COMMANDS (an associative array: name → command line) and
# ORDER (the names in run order).
#
#   time_alternating RUNS SCRATCH_DIR
time_alternating() {
    local runs=$1 dir=$2 name run
    for name in "${ORDER[@]}"; do : >"$dir/$name.times"; done
    for run in $(seq "$runs"); do
        for name in "${ORDER[@]}"; do
            # shellcheck disable=SC2086
            /usr/bin/time -f "%e %M" -o "$dir/one" ${COMMANDS[$name]} >/dev/null 2>&1 || true
            cat "$dir/one" >>"$dir/$name.times"
        done
        echo "run $run of $runs done" >&2
    done
    printf '| command (%s runs each, alternating) | wall s min | median | max | peak MiB median |\n|---|---:|---:|---:|---:|\n' "$runs"
    for name in "${ORDER[@]}"; do
        python3 - "$dir/$name.times" "$name" <<'PY'
import statistics, sys
rows = [line.split() for line in open(sys.argv[1]) if line.strip()]
wall = sorted(float(r[0]) for r in rows)
rss = [int(r[1]) / 1024 for r in rows]
print(f"| {sys.argv[2]} | {wall[0]:.2f} | {statistics.median(wall):.2f} | {wall[-1]:.2f} | {statistics.median(rss):.1f} |")
PY
    done
}

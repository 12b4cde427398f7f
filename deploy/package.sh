#!/usr/bin/env bash
# Builds the release binary and splits its debug information off, into dist/:
#   dist/vantage        stripped — what ships and runs
#   dist/vantage.debug  its line tables and symbols, linked from the binary (.gnu_debuglink), for
#                       symbolizing a crash: `gdb dist/vantage core` or `addr2line -e dist/vantage.debug`
# Needs binutils (objcopy), which deploy/debian-deps.sh installs.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "building the release binary (whole-program LTO: several minutes)" >&2
cargo build --release --locked --bin vantage
built="${CARGO_TARGET_DIR:-target}/release/vantage"
mkdir -p dist
objcopy --only-keep-debug "$built" dist/vantage.debug
objcopy --strip-all --add-gnu-debuglink=dist/vantage.debug "$built" dist/vantage.tmp
mv dist/vantage.tmp dist/vantage
ls -l dist/vantage dist/vantage.debug >&2

#!/usr/bin/env bash
# Sets up and starts Vantage in its default, embedded mode on a fresh Debian 12 machine: installs the
# build dependencies, builds the stripped release binary (deploy/package.sh), and runs
# `vantage serve` with its data in ./vantage-data (override with VANTAGE_DATA_DIR). Extra arguments
# go to `vantage serve`.
# The first start prints a bootstrap admin API key once.
set -euo pipefail
cd "$(dirname "$0")/.."
source deploy/debian-deps.sh
bash deploy/package.sh
exec dist/vantage serve "$@"

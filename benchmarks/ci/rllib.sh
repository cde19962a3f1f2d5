#!/usr/bin/env bash
# CI job for the RLlib face: RLlib pins gymnasium==1.2.2 (the main venv has gymnasium 1.4), so it
# gets a venv of its own. Creates the venv at $1 (default: .venv-rllib in the repository root),
# installs ray[rllib], torch (the CPU build pinned by constraints.txt; any other torch downloads
# several GB of CUDA packages) and recoworld editable, then runs the multi-agent PPO example with
# one env runner actor stepping two envs (sampling off the driver, as on a cluster).
#
#   bash benchmarks/ci/rllib.sh [VENV_DIR]
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
VENV=${1:-$ROOT/.venv-rllib}
case $VENV in /*) ;; *) VENV=$PWD/$VENV ;; esac  # the example runs from another directory
PYTHON=${PYTHON:-python3.11}
RAY_VERSION=2.60.0  # its ray[rllib] requires gymnasium==1.2.2

export PIP_DISABLE_PIP_VERSION_CHECK=1
export RAY_AUTH_MODE=disabled RAY_USAGE_STATS_ENABLED=0  # local cluster: no token, no network

step() { printf '\n==> %s\n' "$*"; }
start=$(date +%s)

step "venv at $VENV"
"$PYTHON" -m venv "$VENV"
echo '*' >"$VENV/.gitignore"  # keep git and ruff out of it when it lives inside the repository

step "install ray[rllib]==$RAY_VERSION, torch==2.13.0, recoworld (editable)"
"$VENV/bin/pip" install -q "ray[rllib]==$RAY_VERSION" "gymnasium==1.2.2" "torch==2.13.0" \
  -c "$ROOT/constraints.txt"
"$VENV/bin/pip" install -q -e "$ROOT" -c "$ROOT/constraints.txt"
"$VENV/bin/pip" check
"$VENV/bin/python" -c 'import gymnasium, ray, torch; print("ray", ray.__version__,
  "gymnasium", gymnasium.__version__, "torch", torch.__version__)'
installed=$(date +%s)
echo "install: $((installed - start))s"

step "example: docs/examples/rllib/socialfeed_ppo.py --env-runners 1 --envs-per-runner 2"
(cd "$(mktemp -d)" && "$VENV/bin/python" "$ROOT/docs/examples/rllib/socialfeed_ppo.py" \
  --env-runners 1 --envs-per-runner 2)
echo "example: $(($(date +%s) - installed))s"

printf '\n==> RLlib job finished in %ss\n' "$(($(date +%s) - start))"

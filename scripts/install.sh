#!/usr/bin/env bash
# Installs Fovea and its test tools into .venv (idempotent). Debian/Ubuntu: also the system
# OpenBLAS that MLX's CPU backend resolves to, the libraries Qt needs offscreen and under Xvfb, and the
# sqlite3 command (`fovea doctor --repair` uses its `.recover` when the build has it).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(uname -s)" = "Linux" ] && command -v apt-get >/dev/null 2>&1; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    pkgs="libopenblas0-pthread xvfb libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-render-util0 \
libxcb-xkb1 libxkbcommon-x11-0 libxkbcommon0 libegl1 libgl1 libfontconfig1 libdbus-1-3 libglib2.0-0 sqlite3"
    missing=""
    for p in $pkgs; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
    if [ -n "$missing" ]; then
        $SUDO apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
    fi
fi

PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
extras=""
constraints=()
if [ "${1:-}" = "--dev" ]; then
    # Tests run against the versions they were written for; users' installs keep the open ranges.
    constraints=(-c constraints-dev.txt)
    # A pinned CPU torch first: an unpinned one drags in a multi-GB CUDA build on Linux.
    [ "$(uname -s)" = "Linux" ] && .venv/bin/python -m pip install -q "torch==2.13.0"
    extras="[torch,dev,cluster]"  # cluster: Ray Data, so the --engine ray tests run in CI
fi
.venv/bin/python -m pip install -q ${constraints[@]+"${constraints[@]}"} -e ".${extras}"

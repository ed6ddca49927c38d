#!/usr/bin/env bash
# Make a fresh machine ready: Debian packages, a virtual environment with every Python package.
# Idempotent and quick when everything is already there. Used by `make demo` and `make test`.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PY=${PYTHON:-python3}

need_apt=()
command -v espeak-ng >/dev/null 2>&1 || need_apt+=(espeak-ng)
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)  # the report's browser test
if [ ${#need_apt[@]} -gt 0 ]; then
    echo "setup: installing Debian packages: ${need_apt[*]}"
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if [ ! -x "$VENV/bin/python" ]; then
    echo "setup: creating $VENV"
    "$PY" -m venv "$VENV"
fi
stamp="$VENV/.mvsd-setup"
want=$(cat pyproject.toml scripts/setup.sh scripts/constraints.txt | sha256sum | cut -c1-16)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "setup: installing Python packages into $VENV (first time: a few minutes)"
    # torch 2.13.0's CPU build: pip takes it from this machine's wheel store (/opt/wheels);
    # 2 GB of venv and ~3.5 min of set-up, where a CUDA build (which torchaudio's wheels would
    # require) is 6.5 GB and ~5.5 min (BENCHMARKS.md, "Set-up").
    quiet() { "$@" 2>&1 | { grep -v "is ignored: it is neither a file nor a directory" || true; }; }
    quiet "$VENV/bin/pip" install -q "torch==2.13.0"
    # The other ~230 packages through uv when it can be had: the same versions as pip's (compared
    # with pip freeze), in ~30 s instead of ~3 min of pip's resolver (BENCHMARKS.md, "Set-up").
    # uv leaves the torch above alone (already satisfies torch>=2.4). Without uv, pip does it all.
    if "$VENV/bin/pip" install -q uv >/dev/null 2>&1; then
        "$VENV/bin/uv" pip install -q --python "$VENV/bin/python" -c scripts/constraints.txt -e ".[dev]"
    else
        quiet "$VENV/bin/pip" install -q -c scripts/constraints.txt -e ".[dev]"  # constraints: see the file
    fi
    echo "$want" > "$stamp"
fi

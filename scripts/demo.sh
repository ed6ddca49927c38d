#!/usr/bin/env bash
# `make demo`: the whole pipeline on the built-in dataset, the reproducible way (dvc repro):
#   SimRooms -> round 0 -> pseudo-pairs -> round 1 -> evaluation + report,
# then every dataset and checkpoint is pushed to the DVC remote. Prints the results table and
# where the report is. Rerunning it is a no-op unless code or params changed.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
start=$(date +%s)
if [ ! -d .git ]; then  # a copy without git history: DVC needs a git repository
    git init -q && git add -A && git -c user.name=mvsd -c user.email=mvsd@localhost commit -qm "mvsd"
fi
dvc repro 2>&1 | python3 scripts/stage_times.py
dvc push --quiet || echo "warning: dvc push to the remote failed (the pipeline's results are intact)" >&2
echo
cat metrics/demo.md
echo
echo "report: $PWD/reports/demo/index.html"
echo "demo pipeline finished in $(( $(date +%s) - start )) s"

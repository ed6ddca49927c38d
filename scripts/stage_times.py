"""Pass `dvc repro` output through, then print how long each stage took (wall time between the
"Running stage" lines). Used by scripts/demo.sh; the demo's stage timings in BENCHMARKS.md."""

from __future__ import annotations

import re
import sys
import time

start = last = time.perf_counter()
stages: list[tuple[str, float]] = []
current = None
for line in sys.stdin:
    sys.stdout.write(line)
    sys.stdout.flush()
    m = re.search(r"Running stage '([^']+)'", line)
    if m:
        now = time.perf_counter()
        if current:
            stages.append((current, now - last))
        current, last = m.group(1), now
end = time.perf_counter()
if current:
    stages.append((current, end - last))
if stages:
    print("\n| stage | seconds |\n|---|---:|")
    for name, sec in stages:
        print(f"| {name} | {sec:.1f} |")
    print(f"| dvc repro in all | {end - start:.1f} |")

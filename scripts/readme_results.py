"""The README's results tables, rendered from the committed evaluation (metrics/demo.md).

    python scripts/readme_results.py            # print the tables
    python scripts/readme_results.py --write    # replace them in README.md

The README's tables sit between ``<!-- results -->`` and ``<!-- /results -->``;
``tests/test_readme.py`` checks that they are what this script renders from the committed
``metrics/demo.md``, so the figures a reader sees are the ones the pipeline wrote.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BEGIN, END = "<!-- results -->", "<!-- /results -->"

# (metrics/demo.md column, README header, decimals)
VAM = [("stft_distance", "STFT distance ↓", 3), ("rt60_error", "RT60 error (s) ↓", 2), ("drr_error", "DRR error (dB) ↓", 2)]
DEREVERB = [("pesq", "PESQ ↑", 3), ("stoi", "STOI ↑", 3), ("estoi", "ESTOI ↑", 3), ("si_sdr", "SI-SDR (dB) ↑", 2)]
# (system in metrics/demo.md, README label, compared: bold when best); upper bounds and the
# grey-image ablation are shown, never bold
VAM_ROWS = [
    ("identity", "unchanged input", True),
    ("mean_rir", "mean training RIR", True),
    ("retrieval", "nearest training room's RIR (by image)", True),
    ("oracle_t60", "RIR from the true per-band T60 and DRR (upper bound of the physical path)", False),
    ("@0", "", True),  # the physical estimate: one row when both rounds make the same
    ("round-0@1steps", "round 0 @1", True),
    ("round-1@1steps", "round 1 @1 (+ pseudo-pairs; the default model)", True),
    ("round-1-blank-image@1steps", "round 1 @1, grey image instead of the picture", False),
]
DEREVERB_ROWS = [
    ("identity", "unchanged input", True),
    ("wpe", "WPE (tuned on val)", True),
    ("lebart_blind", "late-reverb suppression, blind T60 (audio only)", True),
    ("round-0@1steps", "round 0 @1", True),
    ("round-1@1steps", "round 1 @1 (the default model)", True),
    ("round-1-blank-image@1steps", "round 1 @1, grey image", False),
]
CELL = re.compile(r"^\s*(-?[0-9.]+(?:e[+-]?\d+)?) ± ([0-9.]+(?:e[+-]?\d+)?)\s*$")


def parse_tables(md: str) -> dict[str, dict[str, dict[str, tuple[float, float]]]]:
    """``{"vam" | "dereverb": {system: {metric: (mean, ci)}}}`` from metrics/demo.md's first two
    tables (the per-system scores)."""
    tables: dict[str, dict] = {}
    task = None
    header: list[str] = []
    for line in md.splitlines():
        if line.startswith("**VAM"):
            task = "vam"
        elif line.startswith("**Dereverberation"):
            task = "dereverb"
        elif line.startswith("**"):
            task = None
        elif task and line.startswith("| system"):
            header = [c.strip().split(" ")[0] for c in line.strip("|").split("|")]
        elif task and line.startswith("| ") and not line.startswith("|---"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            values = {}
            for name, cell in zip(header[1:], cells[1:]):
                m = CELL.match(cell)
                if m:
                    values[name] = (float(m.group(1)), float(m.group(2)))
            tables.setdefault(task, {})[cells[0]] = values
    missing = [t for t in ("vam", "dereverb") if t not in tables]
    if missing:
        raise ValueError(f"metrics/demo.md has no {' or '.join(missing)} table")
    return tables


def _num(x: float, decimals: int) -> str:
    return f"{x:.{decimals}f}".replace("-", "−")


def _table(title: str, columns, rows, scores: dict, lower_better: bool) -> list[str]:
    rows = list(rows)
    if rows and any(key == "@0" for key, _, _ in rows):
        r0, r1 = scores.get("round-0@0steps"), scores.get("round-1@0steps")
        at0 = (
            [("round-1@0steps", "@0: physical estimate from the picture (the same in both rounds)", True)]
            if r0 == r1
            else [("round-0@0steps", "round 0 @0 (physical estimate)", True), ("round-1@0steps", "round 1 @0", True)]
        )
        i = next(i for i, (key, _, _) in enumerate(rows) if key == "@0")
        rows[i : i + 1] = at0
    for key, _, _ in rows:
        if key not in scores:
            raise ValueError(f"metrics/demo.md has no row {key!r}")
    best = {}
    for metric, _, decimals in columns:
        compared = [round(scores[key][metric][0], decimals) for key, _, bold in rows if bold]
        best[metric] = min(compared) if lower_better else max(compared)
    lines = [f"| {title} | " + " | ".join(h for _, h, _ in columns) + " |", "|---|" + "---:|" * len(columns)]
    for key, label, bold in rows:
        cells = []
        for metric, _, decimals in columns:
            mean, ci = scores[key][metric]
            text = f"{_num(mean, decimals)} ± {_num(ci, decimals)}"
            cells.append(f"**{text}**" if bold and round(mean, decimals) == best[metric] else text)
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def render(md: str) -> str:
    """The README's results block (markers included) for a metrics/demo.md text."""
    t = parse_tables(md)
    lines = [
        BEGIN,
        *_table("visual acoustic matching", VAM, VAM_ROWS, t["vam"], lower_better=True),
        "",
        *_table("dereverberation", DEREVERB, DEREVERB_ROWS, t["dereverb"], lower_better=False),
        END,
    ]
    return "\n".join(lines)


def readme_block(readme: str) -> str:
    if BEGIN not in readme or END not in readme:
        raise ValueError(f"README.md has no {BEGIN} ... {END} block")
    return readme[readme.index(BEGIN) : readme.index(END) + len(END)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--metrics", default=str(ROOT / "metrics" / "demo.md"))
    ap.add_argument("--write", action="store_true", help="replace the tables in README.md")
    args = ap.parse_args()
    block = render(Path(args.metrics).read_text())
    if not args.write:
        print(block)
        return 0
    readme_path = ROOT / "README.md"
    readme = readme_path.read_text()
    new = readme.replace(readme_block(readme), block)
    if new == readme:
        print("README.md: results already up to date")
        return 0
    readme_path.write_text(new)
    print("README.md: results tables rewritten from", args.metrics)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The README's results tables are the committed evaluation's (scripts/readme_results.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import readme_results  # noqa: E402

VAM_HEADER = "| system | stft_distance ↓ | log_stft_distance ↓ | rt60_error ↓ | drr_error ↓ |\n|---|---:|---:|---:|---:|\n"
DER_HEADER = "| system | pesq ↑ | stoi ↑ | estoi ↑ | si_sdr ↑ |\n|---|---:|---:|---:|---:|\n"


def demo_md(r1_at0: str = "0.23 ± 0.01") -> str:
    vam = {  # stft distance, RT60 error, DRR error
        "identity": ("0.273 ± 0.017", "0.6 ± 0.1", "3.1 ± 0.4"),
        "mean_rir": ("0.2534 ± 0.0072", "0.61 ± 0.1", "3 ± 0.4"),
        "retrieval": ("0.2502 ± 0.01", "0.62 ± 0.1", "2.9 ± 0.4"),
        "oracle_t60": ("0.191 ± 0.0053", "0.2 ± 0.1", "0.1 ± 0.4"),  # an upper bound: never bold
        "round-0@0steps": ("0.23 ± 0.01", "0.64 ± 0.1", "2.7 ± 0.4"),
        "round-1@0steps": (r1_at0, "0.64 ± 0.1", "2.7 ± 0.4"),
        "round-0@1steps": ("0.2031 ± 0.0066", "0.66 ± 0.1", "2.5 ± 0.4"),
        "round-1@1steps": ("0.2006 ± 0.0064", "0.67 ± 0.1", "2.4 ± 0.4"),
        "round-1-blank-image@1steps": ("0.1 ± 0.0058", "0.5 ± 0.1", "1 ± 0.4"),  # an ablation: never bold
    }
    rows = "".join(f"| {k} | {a} | 1 ± 0.1 | {b} | {c} |\n" for k, (a, b, c) in vam.items())
    der = [
        "identity",
        "wpe",
        "lebart_blind",
        "round-0@1steps",
        "round-1@1steps",
        "round-1-blank-image@1steps",
    ]
    drows = "".join(
        f"| {k} | {1.1 + 0.01 * i:.3f} ± 0.02 | 0.7 ± 0.01 | 0.5 ± 0.02 | -5.81 ± 0.67 |\n"
        for i, k in enumerate(der)
    )
    return (
        f"**VAM (dry -> room)**, test_unseen\n\n{VAM_HEADER}{rows}\n"
        f"**Dereverberation (room -> dry)**, test_unseen\n\n{DER_HEADER}{drows}\n**Paired differences**\n"
    )


def test_render_rounds_bolds_the_best_compared_row_and_merges_equal_physical_estimates():
    out = readme_results.render(demo_md())
    lines = out.splitlines()
    assert lines[0] == readme_results.BEGIN and lines[-1] == readme_results.END
    assert "| mean training RIR | 0.253 ± 0.007 | 0.61 ± 0.10 | 3.00 ± 0.40 |" in lines
    assert (
        "| RIR from the true per-band T60 and DRR (upper bound of the physical path) | 0.191 ± 0.005 | 0.20 ± 0.10 | 0.10 ± 0.40 |"
        in lines
    )
    assert "| unchanged input | 0.273 ± 0.017 | **0.60 ± 0.10** | 3.10 ± 0.40 |" in lines  # lowest RT60 error
    assert (
        "| round 1 @1 (+ pseudo-pairs; the default model) | **0.201 ± 0.006** | 0.67 ± 0.10 | **2.40 ± 0.40** |"
        in out
    )
    assert "| round 1 @1, grey image instead of the picture | 0.100 ± 0.006 |" in out  # never bold
    assert sum("@0: physical estimate" in line for line in lines) == 1
    assert "| round 1 @1 (the default model) | **1.140 ± 0.020** |" in out  # the highest PESQ
    assert "| round 1 @1, grey image | 1.150 ± 0.020 |" in out
    assert "−5.81 ± 0.67" in out  # a minus sign, not a hyphen


def test_render_shows_both_physical_estimates_when_the_rounds_differ_and_names_a_missing_row():
    out = readme_results.render(demo_md(r1_at0="0.22 ± 0.01"))
    assert "round 0 @0 (physical estimate)" in out and "| round 1 @0 |" in out
    with pytest.raises(ValueError, match="retrieval"):
        readme_results.render(demo_md().replace("| retrieval |", "| something_else |"))
    with pytest.raises(ValueError, match="dereverb"):
        readme_results.render(demo_md().split("**Dereverberation")[0])


def test_the_readme_shows_the_committed_metrics():
    md = ROOT / "metrics" / "demo.md"
    assert md.is_file(), "metrics/demo.md is committed (the demo's evaluation)"
    changed = subprocess.run(["git", "diff", "--quiet", "HEAD", "--", "metrics/demo.md"], cwd=ROOT).returncode
    if changed:
        pytest.skip("metrics/demo.md is not the committed one (a local make demo): "
                    "python scripts/readme_results.py --write updates the README")  # fmt: skip
    readme = (ROOT / "README.md").read_text()
    assert readme_results.readme_block(readme) == readme_results.render(md.read_text()), (
        "README.md's results differ from metrics/demo.md: python scripts/readme_results.py --write"
    )

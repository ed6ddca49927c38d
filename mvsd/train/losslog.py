"""The per-step losses of a training round, logged with DVCLive (DVC's own logger).

A round's losses go to ``checkpoints/<run>/round-<k>-live/``: ``plots/metrics/<name>.tsv`` (one
file per named loss, columns ``step`` and the value; ``dvc plots show`` draws them,
``dvc.yaml`` declares them) and ``metrics.json`` (the latest value of each and the step). Inside
``dvc exp run`` DVCLive also tells DVC when each step ends, so DVC's tools can follow the curves
while the round trains.

Only rank 0 logs. A resumed round continues the log: the rows after the checkpoint it resumed from
are dropped first (they are trained again), so no step is logged twice and none is missing.
"""

from __future__ import annotations

import csv
import logging
import math
import os
from pathlib import Path

PLOTS = Path("plots") / "metrics"
log = logging.getLogger(__name__)


def loss_dir(checkpoints: str | Path, run: str, k: int) -> Path:
    """Where round ``k`` of ``run`` logs its losses."""
    return Path(checkpoints) / run / f"round-{k}-live"


class LossLog:
    """``write(step, losses)`` once per optimizer step; ``close()`` at the end. ``folder=None``
    (ranks other than 0) logs nothing."""

    def __init__(self, folder: str | Path | None, resume_step: int = 0):
        self.live = None
        if folder is None:
            return
        logging.getLogger("dvclive").setLevel(logging.WARNING)  # "Logging to experiment ..." per round
        if resume_step > 0:
            _drop_after(Path(folder), resume_step)
        # resume=False clears an earlier log in the folder; no dvc.yaml or experiment of its own:
        # the pipeline's dvc.yaml declares the folder, `dvc exp run` makes the experiments.
        self.live = _live_class()(
            str(folder), resume=resume_step > 0, save_dvc_exp=False, dvcyaml=False, report=None
        )

    def write(self, step: int, losses: dict[str, float]) -> None:
        if self.live is None:
            return
        self.live.step = step
        for name, value in losses.items():
            if math.isfinite(value):
                self.live.log_metric(name, round(float(value), 6))
        self.live.next_step()

    def close(self) -> None:
        if self.live is not None:
            self.live.end()
            self.live = None


def _live_class():
    from dvclive import Live

    class _Live(Live):
        """DVCLive whose DVC integration (telling ``dvc exp run`` that a step ended) may fail
        without failing the round: it needs a git repository with a commit (``git init`` alone
        raises "Empty git repo"), the log itself needs none."""

        def _init_dvc(self):
            try:
                super()._init_dvc()
            except Exception as e:  # noqa: BLE001 - any failure of the optional integration
                log.debug("DVCLive without DVC integration: %s", e)
                self._dvc_repo = None

    return _Live


def _drop_after(folder: Path, step: int) -> None:
    for tsv in (folder / PLOTS).rglob("*.tsv"):
        with open(tsv, newline="") as f:
            rows = list(csv.reader(f, delimiter="\t"))
        if not rows or "step" not in rows[0]:
            continue
        at = rows[0].index("step")
        keep = [rows[0]] + [r for r in rows[1:] if len(r) > at and int(float(r[at])) <= step]
        tmp = tsv.with_name(f"{tsv.name}.tmp-{os.getpid()}")
        with open(tmp, "w", newline="") as f:
            csv.writer(f, delimiter="\t", lineterminator="\n").writerows(keep)
        os.replace(tmp, tsv)


def read_losses(folder: str | Path) -> list[dict[str, float]]:
    """The log as rows, one per step in order: ``{"step": s, "reverb/style": ..., ...}``."""
    base = Path(folder) / PLOTS
    by_step: dict[int, dict[str, float]] = {}
    for tsv in sorted(base.rglob("*.tsv")):
        name = tsv.relative_to(base).with_suffix("").as_posix()
        with open(tsv, newline="") as f:
            for row in csv.DictReader(f, delimiter="\t"):
                step = int(float(row["step"]))
                by_step.setdefault(step, {"step": step})[name] = float(row[tsv.stem])
    return [by_step[s] for s in sorted(by_step)]

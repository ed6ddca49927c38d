"""The round's loss log (DVCLive): what DVC reads, and a resumed round logs no step twice."""

import json
import math

from mvsd.train.losslog import LossLog, read_losses


def test_each_named_loss_has_a_dvc_plot_file_and_the_summary_has_the_latest(tmp_path):
    log = LossLog(tmp_path / "live")
    for step in (1, 2, 3):
        log.write(step, {"reverb/style": 0.1 * step, "total": 1.0 / step, "skipped_steps": 0.0})
    log.close()
    tsv = (tmp_path / "live" / "plots" / "metrics" / "reverb" / "style.tsv").read_text().splitlines()
    assert tsv[0].split("\t") == ["step", "style"] and len(tsv) == 4
    summary = json.loads((tmp_path / "live" / "metrics.json").read_text())
    assert (
        summary["step"] == 3
        and summary["reverb"]["style"] == 0.3
        and math.isclose(summary["total"], 1 / 3, rel_tol=1e-5)
    )
    rows = read_losses(tmp_path / "live")
    assert [r["step"] for r in rows] == [1, 2, 3] and rows[1]["reverb/style"] == 0.2
    assert not (tmp_path / "live" / "dvc.yaml").exists()  # dvc.yaml (the pipeline's) declares the folder


def test_a_resumed_round_drops_the_steps_after_its_checkpoint_and_logs_them_again(tmp_path):
    log = LossLog(tmp_path / "live")
    for step in range(1, 6):
        log.write(step, {"total": float(step)})
    # killed after step 5; the last checkpoint was at step 3: steps 4 and 5 are trained again
    log = LossLog(tmp_path / "live", resume_step=3)
    for step in (4, 5, 6):
        log.write(step, {"total": 10.0 * step})
    log.close()
    rows = read_losses(tmp_path / "live")
    assert [r["step"] for r in rows] == [1, 2, 3, 4, 5, 6]
    assert [r["total"] for r in rows] == [1.0, 2.0, 3.0, 40.0, 50.0, 60.0]


def test_a_new_round_starts_a_new_log_and_non_finite_values_are_not_written(tmp_path):
    log = LossLog(tmp_path / "live")
    log.write(1, {"total": 5.0})
    log.close()
    log = LossLog(tmp_path / "live")  # the round trained again from scratch
    log.write(1, {"total": 1.0, "cycle/clean": float("nan")})
    log.close()
    assert read_losses(tmp_path / "live") == [{"step": 1, "total": 1.0}]


def test_ranks_other_than_0_log_nothing(tmp_path):
    log = LossLog(None)
    log.write(1, {"total": 1.0})
    log.close()
    assert list(tmp_path.iterdir()) == []


def test_a_git_repository_without_commits_does_not_stop_the_log(tmp_path, monkeypatch):
    """`git init` and train at once: DVCLive's DVC integration fails ("Empty git repo"), the log
    does not."""
    import subprocess

    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    monkeypatch.chdir(tmp_path)
    log = LossLog(tmp_path / "live")
    log.write(1, {"total": 2.0})
    log.close()
    assert read_losses(tmp_path / "live") == [{"step": 1, "total": 2.0}]

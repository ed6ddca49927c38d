"""One table of stages (mvsd/stages.py): dvc.yaml, the training fingerprint and the flows' cache
keys all follow it, so a knob a stage does not read never reruns it."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from flows.common import key_fn, plain
from mvsd.config import load_params
from mvsd.stages import DVC_STAGES, INFERENCE_KEYS, STAGES, _imports, stage_code, stage_params
from mvsd.train.distributed import fingerprint

ROOT = Path(__file__).resolve().parent.parent


def dvc_stages() -> dict:
    return yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


@pytest.mark.parametrize("name", sorted(DVC_STAGES))
def test_dvc_yaml_says_what_the_stage_table_says(name):
    stage, table = dvc_stages()[name], STAGES[DVC_STAGES[name]]
    assert stage["params"] == list(table.params)
    code = [d for d in stage["deps"] if d.startswith("mvsd/")]
    expected = stage_code(DVC_STAGES[name])
    assert code == list(expected), (
        f"dvc.yaml's {name} should list the code it imports (`python -m mvsd.stages --write` updates it):\n"
        + "".join(f"      - {path}\n" for path in expected)
    )


def test_every_dvc_stage_is_in_the_table():
    assert set(dvc_stages()) == set(DVC_STAGES)


def test_every_key_names_a_param_and_every_code_path_exists():
    params = load_params(None)
    for name, stage in STAGES.items():
        values = stage_params(params, name)  # a misspelt key raises KeyError here
        assert list(values) == list(stage.params)
        for path in stage_code(name):
            assert (ROOT / path).is_file(), f"{name}: {path}"
            assert (ROOT / path).stat().st_size > 0, (
                f"{path} is empty: DVC warns about empty deps on every run"
            )
    assert stage_params(params, "evaluate")["model.steps"] == params.model.steps
    assert stage_params(plain(params), "train") == stage_params(params, "train")


def test_a_stage_depends_on_the_files_it_imports_and_no_others():
    synth, train, evaluate = stage_code("synth"), stage_code("train"), stage_code("evaluate")
    # imported, directly or not (sim.synth -> data.builder -> data.shards), packages included
    assert {"mvsd/sim/synth.py", "mvsd/sim/render.py", "mvsd/data/shards.py", "mvsd/sim/__init__.py"} <= set(
        synth
    )
    assert not any(path.startswith(("mvsd/models/", "mvsd/train/", "mvsd/eval/")) for path in synth)
    # a lazy import inside a function counts: the training loop and the U-Net
    assert {"mvsd/train/loop.py", "mvsd/models/unet.py", "mvsd/stages.py"} <= set(train)
    assert "mvsd/eval/report.py" in evaluate and "mvsd/sim/render.py" not in evaluate
    assert all("mvsd/cli.py" not in stage_code(name) for name in STAGES)


def test_relative_imports_resolve_to_the_package_files(tmp_path):
    file = tmp_path / "fake.py"
    file.write_text(
        "from .loop import train_loop\nfrom ..converter import Converter\nimport numpy\n"
        "def f():\n    from mvsd.data import loader\n"
    )
    found = _imports(file, "mvsd.train.fake")
    assert {"mvsd.train.loop", "mvsd.converter", "mvsd.data", "mvsd.data.loader"} <= found
    assert "numpy" not in found and not any(name.endswith("train_loop") for name in found)


def test_every_model_knob_is_read_by_training_or_by_inference():
    model_keys = {f"model.{k}" for k in plain(load_params(None))["model"]}
    train = {k for k in STAGES["train"].params if k.startswith("model.")}
    assert train | set(INFERENCE_KEYS) == model_keys and not train & set(INFERENCE_KEYS)


def test_the_training_fingerprint_follows_what_training_reads():
    data = {"paired": "/nowhere/ds", "pseudo": []}
    fp = lambda *sets: fingerprint(load_params(None, list(sets)), data, None)  # noqa: E731
    base = fp()
    assert fp("model.steps=4") == base  # inference only
    assert fp("evaluate.limit=10") == base
    assert fp("pseudo.keep_fraction=0.3") == base
    assert fp("train.lr=0.001") != base
    assert fp("model.tail_levels=learned") != base


def test_flow_cache_keys_follow_the_stage_table():
    def key(task: str, stage: str, *sets: str) -> str:
        ctx = SimpleNamespace(task=SimpleNamespace(name=task))
        return key_fn(stage)(ctx, {"out": "x", "params_dict": plain(load_params(None, list(sets)))})

    assert key("train-round", "train", "model.steps=4") == key("train-round", "train")
    assert key("evaluate", "evaluate", "model.steps=4") != key("evaluate", "evaluate")
    assert key("evaluate", "evaluate", "train.lr=0.001") == key("evaluate", "evaluate")
    assert key("pseudo-pairs", "pseudo", "pseudo.keep_fraction=0.3") != key("pseudo-pairs", "pseudo")


def _import_graph() -> dict[str, set[str]]:
    modules = {}
    for file in (ROOT / "mvsd").rglob("*.py"):
        parts = file.relative_to(ROOT).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = file
    return {m: {i for i in _imports(f, m) if i in modules and i != m} for m, f in modules.items()}


def test_the_package_imports_form_no_cycle_and_data_and_eval_never_import_the_simulator():
    graph = _import_graph()
    assert {"mvsd.eval.run", "mvsd.eval.report", "mvsd.data.adapters"} <= set(graph)
    assert "mvsd.eval.result" in graph["mvsd.eval.report"]  # the graph sees imports (lazy ones too)
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> None:
        assert module not in path, "import cycle: " + " -> ".join([*path[path.index(module) :], module])
        if module in done:
            return
        for dep in graph[module]:
            visit(dep, [*path, module])
        done.add(module)

    for module in graph:
        visit(module, [])
    upward = [
        (m, d)
        for m, deps in graph.items()
        for d in deps
        if m.startswith(("mvsd.data", "mvsd.eval")) and d.startswith("mvsd.sim")
    ]
    assert upward == []


def test_the_code_version_follows_the_files_a_stage_runs(tmp_path, monkeypatch):
    import shutil

    import mvsd.stages as st

    shutil.copytree(
        ROOT / "mvsd", tmp_path / "mvsd", ignore=shutil.ignore_patterns("__pycache__", "pretrained")
    )
    monkeypatch.setattr(st, "ROOT", tmp_path)

    def versions() -> dict[str, str]:
        st.stage_code.cache_clear()
        st.code_version.cache_clear()
        return {stage: st.code_version(stage) for stage in ("synth", "train", "evaluate")}

    try:
        before = versions()
        losses = tmp_path / "mvsd" / "losses.py"  # the training losses: not read by synth or evaluate
        losses.write_text(losses.read_text() + "\nEXTRA = 1\n")
        after = versions()
    finally:
        monkeypatch.undo()
        st.stage_code.cache_clear()
        st.code_version.cache_clear()
    assert after["train"] != before["train"]
    assert after["synth"] == before["synth"] and after["evaluate"] == before["evaluate"]


def test_changed_training_code_is_trained_again_not_resumed(monkeypatch):
    """The fingerprint names the round's state file: a round killed (or finished) under other
    code is not resumed from, as DVC reruns the stage."""
    import mvsd.train.distributed as dist

    data = {"paired": "/nowhere/ds", "pseudo": []}
    base = fingerprint(load_params(None), data, None)
    monkeypatch.setattr(dist, "code_version", lambda stage: "another version")
    assert fingerprint(load_params(None), data, None) != base

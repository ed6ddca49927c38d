"""`mvsd report`: a static page that opens from disk; headless Chromium checks every element."""

import json
import re
import shutil
import subprocess

import numpy as np
import pytest
import soundfile as sf
from conftest import TINY_SIMROOMS

from mvsd.config import load_params
from mvsd.converter import Converter
from mvsd.eval.baselines import BASELINES
from mvsd.eval.report import make_report
from mvsd.eval.run import evaluate, merge
from mvsd.sim.synth import synth

CHECK = """<script>
window.addEventListener('load', async () => {
  const imgs = [...document.images];
  const auds = [...document.querySelectorAll('audio')];
  await Promise.all(auds.map(a => a.readyState >= 1 ? 0 : new Promise(r => {
    a.addEventListener('loadedmetadata', r); a.addEventListener('error', r); a.load(); })));
  const bad = imgs.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.getAttribute('src'))
    .concat(auds.filter(a => a.readyState < 1 || a.error).map(a => a.getAttribute('src')));
  document.body.setAttribute('data-check', JSON.stringify({images: imgs.length, audios: auds.length, bad}));
});
</script></body>"""


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    synth(root / "ds", load_params(None, TINY_SIMROOMS))
    model = load_params(
        None, ["model.size=tiny", "model.steps=1", "model.segment_seconds=0.64", "model.overlap_seconds=0.16"]
    ).model
    for d in ("reverb", "dereverb"):
        Converter.new(d, model).save(root / "round-0" / f"{d}.safetensors")
    return root


def test_report_shows_the_room_scatter_and_the_image_ablation(setup, tmp_path):
    rounds = {"round-0": setup / "round-0"}
    result = evaluate(setup / "ds", "test_unseen", rounds, limit=2, wpe_val=2, examples=1)
    blank = evaluate(setup / "ds", "test_unseen", rounds, limit=2, baselines=False, blank_image=True, examples=1)
    page = make_report(merge(result, blank), tmp_path / "a")
    text = page.read_text()
    assert "Room read from the image" in text and "Image ablation" in text
    for j, label in enumerate(("round-0", "round-0-blank-image")):
        assert f"src='media/room-{j}.png' alt='room scatter {label}'" in text
        assert (tmp_path / "a" / "media" / f"room-{j}.png").read_bytes()[:4] == b"\x89PNG"
    assert "<td>room_t60_error</td>" in text and "grey / picture" in text
    # the blank-image outputs are on the page to listen to, beside the picture's
    assert (tmp_path / "a" / "media" / "0-vam-round-0-blank-image.wav").exists()
    # the plots compare the systems on a readable scale: the exact oracles stay in the tables only
    from mvsd.eval.report import plotted

    systems, metrics = plotted(merge(result, blank).summary, "dereverb")
    assert "oracle_dry" not in systems and "wpe" in systems and "round-0-blank-image" in systems
    assert metrics == ["pesq", "estoi", "si_sdr"] and "<th>oracle_dry</th>" in text
    # no round, no scatter
    baselines_only = evaluate(setup / "ds", "test_unseen", {}, limit=1, wpe_val=2, examples=1)
    assert "room scatter" not in make_report(baselines_only, tmp_path / "c").read_text()


def test_report_plays_what_the_evaluation_computed(setup, tmp_path, monkeypatch):
    """The page renders the evaluation's own outputs: it converts nothing and reads no dataset."""
    import mvsd.converter
    import mvsd.eval.baselines

    rounds = {"round-0": setup / "round-0"}
    result = evaluate(setup / "ds", "test_unseen", rounds, limit=3, wpe_val=2, sweep=[0, 1], examples=2)
    assert [s.key for s in result.examples] == [r["key"] for r in result.rows[:2]]
    assert all(len(v) == 2 for v in result.example_outputs.values())

    def forbidden(*a, **k):
        raise AssertionError("the report recomputed something")

    monkeypatch.setattr(mvsd.converter.Converter, "convert_steps", forbidden)
    monkeypatch.setattr(mvsd.eval.baselines, "read_samples", forbidden)
    page = make_report(result, tmp_path / "r", title="tiny, split test_unseen")
    assert "tiny, split test_unseen: 2 samples" in page.read_text()
    for i in range(2):
        for (family, system), ys in result.example_outputs.items():
            task = "vam" if family == "vam" else "dereverb"
            wav = tmp_path / "r" / "media" / f"{i}-{task}-{system}.wav"
            if ys[i] is None:  # a baseline that needs what the sample lacks
                assert not wav.exists()
                continue
            heard, sr = sf.read(wav, dtype="float32")
            expect = ys[i] / max(1.0, float(np.abs(ys[i]).max()))
            assert sr == 16000 and np.abs(heard - expect).max() < 2e-4, (system, i)


@pytest.mark.skipif(
    shutil.which("chromium") is None, reason="Debian's chromium is not installed (make test installs it)"
)
def test_report_opens_from_disk_with_every_element(setup, tmp_path):
    rounds = {"round-0": setup / "round-0"}
    result = evaluate(setup / "ds", "test_unseen", rounds, limit=2, wpe_val=2, examples=2)
    page = make_report(result, tmp_path / "report")
    text = page.read_text()
    assert "round-0" in text and "Ground truth" in text and "±" in text
    probe = page.with_name("probe.html")
    probe.write_text(text.replace("</body>", CHECK))
    cmd = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={tmp_path / 'chrome'}", "--allow-file-access-from-files",
           "--virtual-time-budget=20000", "--dump-dom", probe.as_uri()]  # fmt: skip
    dom = subprocess.run(cmd, capture_output=True, text=True, timeout=120).stdout
    found = re.search(r'data-check="([^"]*)"', dom)
    assert found, "the page's check did not run"
    check = json.loads(found.group(1).replace("&quot;", '"'))
    # 2 samples x (1 room image + 2 tasks x (source, truth, baselines, converter) spectrograms)
    # + 2 bar plots + 1 room scatter (round-0's reverberator)
    n_clips = 2 * (2 + len(BASELINES["vam"]) + 1 + 2 + len(BASELINES["dereverb"]) + 1)
    assert check["audios"] == n_clips and check["images"] == n_clips + 2 + 2 + 1
    assert check["bad"] == []

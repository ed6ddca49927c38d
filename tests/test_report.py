"""`mvsd report`: a static page that opens from disk; headless Chromium checks every element."""

import json
import re
import shutil
import subprocess

import pytest
from conftest import TINY_SIMROOMS

from mvsd.config import load_params
from mvsd.converter import Converter
from mvsd.eval.report import make_report
from mvsd.eval.run import evaluate
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


@pytest.mark.skipif(
    shutil.which("chromium") is None, reason="Debian's chromium is not installed (make test installs it)"
)
def test_report_opens_from_disk_with_every_element(tmp_path):
    synth(tmp_path / "ds", load_params(None, TINY_SIMROOMS))
    model = load_params(
        None, ["model.size=tiny", "model.steps=1", "model.segment_seconds=0.64", "model.overlap_seconds=0.16"]
    ).model
    for d in ("reverb", "dereverb"):
        Converter.new(d, model).save(tmp_path / "round-0" / f"{d}.safetensors")
    rounds = {"round-0": tmp_path / "round-0"}
    result = evaluate(tmp_path / "ds", "test_unseen", rounds, limit=2, wpe_val=2)
    page = make_report(tmp_path / "ds", "test_unseen", rounds, tmp_path / "report", n=2, result=result)
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
    # 2 samples x (1 room image + 2 tasks x (source, truth, baselines, converter) spectrograms) + 2 plots
    n_clips = 2 * (2 + 4 + 1 + 2 + 3 + 1)
    assert check["audios"] == n_clips and check["images"] == n_clips + 2 + 2
    assert check["bad"] == []

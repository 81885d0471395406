"""The interactive network view: its content, and that it draws in a real headless browser."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import numpy as np
import pytest

from ase_em.crystals.analyzer import MigrationBarrierAnalyzer
from ase_em.crystals.network_view import network_figure
from tests.conftest import EXAMPLES
from tests.crystals.test_percolation import LengthPredictor

BROWSERS = ("chromium-headless-shell", "chromium", "chromium-browser", "google-chrome")


@pytest.fixture(scope="module")
def olivine():
    return MigrationBarrierAnalyzer(EXAMPLES / "structures" / "LiFePO4.cif", "Li", max_distance=5.0,
                                    predictor=LengthPredictor())


def test_figure_holds_cell_host_sites_hops_and_percolating_path(olivine):
    fig = network_figure(olivine)
    names = [t.name for t in fig.data]
    assert {"cell", "Fe", "O", "P", "Li sites"} <= set(names)
    assert "percolating (2D) at 0.47 eV" in names  # E2D of test_labelling: b chains + c hops
    assert "hop 0: 0.30 eV" in names and "hop 1: 0.47 eV" in names
    (hover,) = [t for t in fig.data if t.name == "hop (hover)"]
    assert "hop 0, 2.985 A<br>Em 0.299 eV, std 0.010 eV" in hover.text[0]
    # 4 Li per cell, 2 b-neighbours and 2 c-neighbours each: 8 hops drawn, each with a hover marker
    assert len(hover.text) == 8
    li = next(t for t in fig.data if t.name == "Li sites")
    assert len(li.x) == 4


def _browser() -> str | None:
    return next((shutil.which(b) for b in BROWSERS if shutil.which(b)), None)


PROBE = """<script>
window.addEventListener('load', function () { setTimeout(function () {
  var gd = document.querySelector('.plotly-graph-div');
  var canvases = gd ? gd.querySelectorAll('.gl-container canvas').length : 0;
  var nowebgl = document.body.innerText.indexOf('WebGL is not supported') >= 0;
  document.title = 'probe:' + (gd && gd._fullData ? gd._fullData.length : 0) + ':' + canvases + ':' +
                   (nowebgl ? 'no-webgl' : 'webgl');
}, 500); });
</script></body>"""


def test_html_draws_in_a_headless_browser(olivine, tmp_path):
    browser = _browser()
    if browser is None:
        if os.environ.get("CI"):
            pytest.fail("no headless Chromium on this CI machine: .ci/run installs chromium-headless-shell")
        pytest.skip("no headless Chromium here (apt-get install chromium-headless-shell); CI installs it")
    page = olivine.plot_network(tmp_path / "net.html")
    html = page.read_text()
    assert "plotly" in html and len(html) > 1_000_000  # plotly.js inline: opens without a network
    probed = tmp_path / "probed.html"
    probed.write_text(html.replace("</body>", PROBE, 1))
    flags = ["--no-sandbox", "--disable-gpu", "--enable-unsafe-swiftshader", "--use-angle=swiftshader",
             "--window-size=1100,800", "--virtual-time-budget=8000"]
    dom = subprocess.run([browser, "--headless", *flags, "--dump-dom", probed.as_uri()],
                         capture_output=True, text=True, timeout=120).stdout
    title = re.search(r"<title>(probe:[^<]*)</title>", dom)
    assert title, "the page's script did not run"
    _, n_traces, canvases, webgl = title.group(1).split(":")
    assert int(n_traces) == len(network_figure(olivine).data) and int(canvases) >= 1 and webgl == "webgl"
    shot = tmp_path / "shot.png"
    subprocess.run([browser, "--headless", *flags, f"--screenshot={shot}", page.as_uri()],
                   capture_output=True, timeout=120, check=True)
    from matplotlib.image import imread

    img = imread(shot)[:, :, :3]  # (H, W, 3) in 0..1
    scene = img[60:, 150:850]  # left of the colour bar, below the title
    # the lowest-Em hops are drawn in Viridis' first colour (#440154); the scene is not blank
    purple = np.all(np.abs(scene - np.array([0x44, 0x01, 0x54]) / 255) < 0.08, axis=2).sum()
    assert purple > 50
    assert len(np.unique((scene * 255).astype(int).reshape(-1, 3), axis=0)) > 100

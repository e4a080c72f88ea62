"""The HTML report as a person sees it: opened in headless Chromium, screenshotted.

Chromium (Debian package ``chromium``) is installed by scripts/install-tools.sh; the
tests are skipped, naming the package, when it is absent.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from datapaths import shared
from reportruns import demo_run, png_variance, tool

from contourqa.report import HtmlFormatter
from contourqa.report.record import CaseReport

_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
          "--disable-component-update", "--disable-sync", "--no-first-run",
          "--hide-scrollbars", "--enable-logging=stderr", "--v=0")


def chromium(page: Path, tmp_path: Path, *, screenshot: Path | None = None
             ) -> subprocess.CompletedProcess[str]:
    """Open ``page`` in headless Chromium: ``--dump-dom`` output, or a screenshot."""
    exe = tool("chromium", "chromium")
    what = [f"--screenshot={screenshot}", "--window-size=1280,2000"] if screenshot \
        else ["--dump-dom"]
    cmd = [exe, *_FLAGS, f"--user-data-dir={tmp_path / 'chromium-profile'}", *what,
           page.resolve().as_uri()]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=True)


def console_errors(stderr: str) -> list[str]:
    """Chromium's log lines for page console errors and uncaught exceptions."""
    return [line for line in stderr.splitlines()
            if "CONSOLE" in line and re.search(r"Uncaught|Error", line)]


def render(reports: tuple[CaseReport, ...], path: Path) -> Path:
    HtmlFormatter().write(reports, path)
    return path


def test_console_error_detection_works(tmp_path):
    page = tmp_path / "broken.html"
    page.write_text("<html><body><p>x</p><script>notDefined();</script></body></html>")
    assert console_errors(chromium(page, tmp_path).stderr)


def test_demo_report_renders_with_plots_and_no_console_errors(tmp_path):
    page = render(demo_run().reports, tmp_path / "report.html")
    html = page.read_text()
    # Self-contained: nothing is fetched when the page opens.
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "<link" not in html and "@import" not in html
    dom = chromium(page, tmp_path)
    assert console_errors(dom.stderr) == []
    for plot in ("dvh-plot-0", "slice-plot-0"):
        assert re.search(rf'<img [^>]*id="{plot}"[^>]*src="data:image/png;base64,', dom.stdout)
    # the table holds every check but the not-applicable ones (folded apart)
    n = sum(f.status.value != "not_applicable" for f in demo_run().reports[0].checks)
    assert f"{n} of {n} shown" in dom.stdout  # the filter script ran
    if demo_run().reports[0].sectors:  # the sector analysis ran: one map per involved level
        assert re.search(r'<img class="plot sector-plot"[^>]*src="data:image/png;base64,',
                         dom.stdout)
    shot = tmp_path / "report.png"
    chromium(page, tmp_path, screenshot=shot)
    assert png_variance(shot) > 100.0
    # captions a physicist reads without puzzling: the slices name the GTV once, the
    # DVH names the limits it cannot draw, the dose grid states its axis order
    assert "Through the centre of GTV;" in html and "GTV GTV" not in html
    assert "Limits that are not points of a DVH are in the check table: cord.prv_margin (mm)" \
        in html
    assert "voxels of 2.0 x 2.0 x 2.0 mm (columns x rows x frames)" in html


def test_mostly_not_evaluated_case_renders_and_says_why(tmp_path):
    # A breast plan checked as a spine plan (a profile without the name evidence of
    # rules/data/mode.toml, which would fold the spine rules): the spine sector, cord
    # and GTV checks cannot be evaluated.
    from contourqa.check import check
    from contourqa.options import build_check_options

    profile = tmp_path / "as_spine.toml"
    profile.write_text('[rules."mode.spine_target"]\nnon_spine_site_pattern = ""\n', "utf-8")
    options = build_check_options(profile=profile, keep_media=True)
    (report,) = check(shared("dicompyler_core_example"), options=options).reports
    n_ne = sum(f.status.value == "not_evaluated" for f in report.checks)
    assert n_ne >= 10
    page = render((report,), tmp_path / "report.html")
    dom = chromium(page, tmp_path)
    assert console_errors(dom.stderr) == []
    assert f"{n_ne} of {len(report.checks)} checks could not be evaluated" in dom.stdout
    assert re.search(r'<details class="callout" id="why-not-evaluated-0"', dom.stdout)
    assert "sectors.no_vertebra" in dom.stdout and "No sector map:" in dom.stdout
    shot = tmp_path / "report.png"
    chromium(page, tmp_path, screenshot=shot)
    assert png_variance(shot) > 100.0


def test_report_without_pictures_still_renders():
    (report,) = demo_run().reports
    from dataclasses import replace

    html = HtmlFormatter().render([replace(report, media=None)])
    assert "No DVH plot:" in html and "No slices:" in html and "dose.ptv_coverage" in html

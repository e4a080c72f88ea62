"""The README tells the truth: its commands run as written, its list of `check`
options is the parser's, and `make demo` installs the runtime only."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib

import pytest
from datapaths import REPO


def _script(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(REPO / "scripts" / name), *args],
                          capture_output=True, text=True, timeout=900)


def test_check_options_listed_in_the_readme_are_the_parsers() -> None:
    proc = _script("readme_options.py")
    assert proc.returncode == 0, proc.stderr


@pytest.mark.slow
def test_readme_commands_run_as_written() -> None:
    proc = _script("readme_walk.py")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    ran = [line for line in proc.stdout.splitlines() if line.startswith("ok")]
    assert len(ran) >= 8, proc.stdout  # the first-run commands and the API example


def test_demo_installs_the_runtime_only() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text("utf-8"))["project"]
    runtime = {re.split(r"[\[<>=~! ]", d)[0].lower() for d in project["dependencies"]}
    extras = project["optional-dependencies"]
    tools = {"pytest", "mypy", "hypothesis", "rt-utils", "dicompyler-core", "psycopg", "dask",
             "pynetdicom"}
    assert not runtime & tools
    assert "contourqa[audit,node]" in extras["test"]
    assert {"audit", "node", "test"} <= set(extras)
    make = (REPO / "Makefile").read_text("utf-8")
    demo_install = re.search(r"^\$\(VENV\)/\.installed-runtime:.*?(?=^\S)", make, re.M | re.S)
    assert demo_install and "pip install" in demo_install.group(0)
    assert "[" not in demo_install.group(0).split("pip install", 1)[1]  # no extras
    assert re.search(r"^demo: \$\(VENV\)/\.installed-runtime$", make, re.M)
    assert re.search(r"^test: \$\(VENV\)/\.installed-test", make, re.M)


def test_readme_shows_the_example_files_in_full() -> None:
    readme = (REPO / "README.md").read_text("utf-8")
    for name in ("profile.toml", "waivers.toml"):
        text = (REPO / "docs" / "examples" / name).read_text("utf-8").rstrip()
        assert f"```toml\n{text}\n```" in readme, name

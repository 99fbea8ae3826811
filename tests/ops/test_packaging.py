"""`make venv` installs the engine (functions/pyproject.toml) and the CLI (pyproject.toml) editable
without setuptools' warning block: each is a layout setuptools serves with a plain .pth entry.

setuptools decides in ``editable_wheel._select_strategy``: a project whose package-dir is only
``""`` and whose packages all sit under that folder (``_simple_layout``) gets a static .pth; any
other layout gets its meta path finder, which ends the install with an "Editable installation"
notice about folders shadowing packages
(https://setuptools.pypa.io/en/latest/userguide/development_mode.html). The CLI once mapped
``replication`` from functions/replication beside ./replication_ops: not simple, hence the block.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from setuptools.command.editable_wheel import _simple_layout

REPO_ROOT = Path(__file__).resolve().parents[2]
PROJECTS = [REPO_ROOT / "pyproject.toml", REPO_ROOT / "functions" / "pyproject.toml"]


def _setuptools(project: Path) -> dict:
    return tomllib.loads(project.read_text())["tool"]["setuptools"]


@pytest.mark.parametrize("project", PROJECTS, ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_each_distribution_is_a_layout_setuptools_installs_as_a_static_pth(project: Path) -> None:
    config = _setuptools(project)
    package_dir = config["package-dir"]
    assert set(package_dir) == {""}
    assert _simple_layout(config["packages"], package_dir, str(project.parent))
    for package in config["packages"]:
        assert (project.parent / package_dir[""] / package.replace(".", "/") / "__init__.py").is_file()


def test_the_cli_depends_on_the_engine_distribution() -> None:
    engine = tomllib.loads(PROJECTS[1].read_text())["project"]["name"]
    assert engine in tomllib.loads(PROJECTS[0].read_text())["project"]["dependencies"]


def test_make_venv_installs_both_editable() -> None:
    makefile = (REPO_ROOT / "Makefile").read_text()
    assert "install --quiet --no-deps -e functions -e ." in makefile
    assert "$(STAMP): requirements-dev.txt pyproject.toml functions/pyproject.toml" in makefile

"""A pointer into the docs leads somewhere: "docs/<page>.md, <Section>" names a page and a section that exist.

Variable descriptions (which terraform-docs copies into the module's README and `terraform plan`
prints), log messages and docstrings send the reader to a section by this form. A section that moved
(the latency profiles went from docs/operations.md to docs/architecture.md) left the description
pointing at a page without it; this test makes every such pointer a checked fact.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
# "docs/wire-format.md, Sizes" -- the section runs to the closing parenthesis, quote or sentence end.
REFERENCE = re.compile(r"docs/([A-Za-z0-9_.-]+\.md), \"?([A-Z][^)\"'.;:`\n]*)")
# A section is a heading, or a list item's bold label ("- **Lag by stage** (...): ...").
SECTION = re.compile(r"^(?:#{1,6} +(.+?) *|- \*\*(.+?)\*\*.*)$", re.MULTILINE)


def _tracked_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "*.tf", "*.py", "*.md", "*.tfvars*", "Makefile"],
        cwd=REPO_ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    return [REPO_ROOT / name for name in listed if (REPO_ROOT / name).is_file()]


def _references() -> list[tuple[str, str, str]]:
    found = []
    for path in _tracked_files():
        text = path.read_text(encoding="utf-8", errors="replace")
        for match in REFERENCE.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            where = f"{path.relative_to(REPO_ROOT)}:{line}"
            found.append((where, match.group(1), match.group(2).strip()))
    return found


REFERENCES = _references()


def test_the_repository_points_into_the_docs_by_section() -> None:
    assert len(REFERENCES) >= 10, REFERENCES


@pytest.mark.parametrize(("where", "page", "section"), REFERENCES, ids=[r[0] for r in REFERENCES])
def test_a_section_reference_names_a_heading_of_that_page(where: str, page: str, section: str) -> None:
    path = REPO_ROOT / "docs" / page
    assert path.is_file(), f"{where}: docs/{page} does not exist"
    sections = [heading or label for heading, label in SECTION.findall(path.read_text(encoding="utf-8"))]
    assert any(name.startswith(section) for name in sections), (
        f"{where}: docs/{page} has no section {section!r}; its sections: {sections}"
    )

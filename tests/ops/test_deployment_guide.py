"""The deployment guide, docs/deployment.md, and its Simplified Chinese twin, docs/deployment.zh-CN.md,
are one guide in two languages, and what they tell a deployer to run works against this code.

Kept in step (structure): headings are mapped **by position**: the n-th heading of one guide is the
n-th of the other and has the same level (so both have the same number of headings at each level, in
the same order; a numbered step keeps its number). The fenced blocks are the same sequence, byte for
byte: commands, `terraform.tfvars` lines and their comments are never translated, so every block of
one appears verbatim in the other, in the same place. The lead's placeholders (`<!-- lead: ... -->`)
are the same in both.

Works against this code (commands), without AWS:
- every `ddb-replication` line of both guides parses with the CLI's own parser, and each `--help`
  line prints its help (tests/ops/test_readme.py, the README's doc-block machinery, takes both guides);
- the guide's CA block runs as written, `ca init` into a temporary home, and the certificate it
  exports for Terraform is that CA's;
- every variable the guides set (`name = ...` in `terraform.tfvars` blocks and inline, `TF_VAR_*`) is
  a variable of both roots, every output they read with `terraform -chdir=ROOT output` is an output of
  that root, every `-chdir` is a root, every `make` target is a Makefile target, and every relative
  link resolves; `make package` (a prerequisite of `make test`) wrote the zips the guide names;
- every message the guide's error tables quote is one the module, the roots or the CLI says.
`terraform validate` of both roots runs in `make terraform-checks`, part of `make test`.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509

REPO_ROOT = Path(__file__).resolve().parents[2]
GUIDES = {"en": REPO_ROOT / "docs" / "deployment.md", "zh-CN": REPO_ROOT / "docs" / "deployment.zh-CN.md"}
ROOTS = ("envs/cn-north-1", "envs/us-east-1")
FENCED = re.compile(r"^```[^\n]*\n.*?^```$", re.MULTILINE | re.DOTALL)
PLACEHOLDER = re.compile(r"<!-- lead: .+? -->")


def _text(language: str) -> str:
    return GUIDES[language].read_text(encoding="utf-8")


def _without_blocks(text: str) -> str:
    return FENCED.sub("", text)


def _headings(text: str) -> list[tuple[int, str]]:
    """(level, title) of every Markdown heading outside fenced blocks (a `#` comment in a block is none)."""
    found = re.findall(r"^(#{1,6}) (.+)$", _without_blocks(text), re.MULTILINE)
    return [(len(hashes), title.strip()) for hashes, title in found]


def _blocks(text: str) -> list[str]:
    return FENCED.findall(text)


def _step_number(title: str) -> str | None:
    found = re.match(r"(\d+)\. ", title)
    return found.group(1) if found else None


# -- kept in step -------------------------------------------------------------------------------


def test_the_guides_have_the_same_headings_at_the_same_levels_in_the_same_order() -> None:
    english, chinese = _headings(_text("en")), _headings(_text("zh-CN"))
    assert len(english) >= 10, "the guide has its steps"
    assert [level for level, _ in english] == [level for level, _ in chinese], (
        "heading n of one guide is heading n of the other, at the same level: "
        f"{[(level, title) for level, title in english]} vs {[(level, title) for level, title in chinese]}"
    )
    for (_, title_en), (_, title_zh) in zip(english, chinese, strict=True):
        assert _step_number(title_en) == _step_number(title_zh), f"{title_en!r} and {title_zh!r}"


def test_the_chinese_guide_is_a_translation_not_a_copy() -> None:
    english, chinese = _headings(_text("en")), _headings(_text("zh-CN"))
    translated = [zh for (_, en), (_, zh) in zip(english, chinese, strict=True) if en != zh]
    assert len(translated) == len(english), "every heading is translated"
    assert all(re.search(r"[\u4e00-\u9fff]", title) for title in translated)


def test_every_fenced_block_of_one_guide_appears_verbatim_in_the_other_in_the_same_order() -> None:
    english, chinese = _blocks(_text("en")), _blocks(_text("zh-CN"))
    assert english, "the guide shows its commands"
    missing = [block for block in english if block not in chinese] + [b for b in chinese if b not in english]
    assert not missing, f"blocks in one guide only: {missing}"
    assert english == chinese, "the same blocks, in the same order"


def test_the_leads_placeholders_are_the_same_in_both_guides() -> None:
    english = PLACEHOLDER.findall(_text("en"))
    assert english == PLACEHOLDER.findall(_text("zh-CN"))
    assert len(english) == len(set(english))


# -- the commands work against this code ---------------------------------------------------------


def _ca_block() -> str:
    blocks = [block for block in _blocks(_text("en")) if "ddb-replication ca init --dir" in block]
    assert len(blocks) == 1, "one block creates the pair's CA"
    return "\n".join(blocks[0].splitlines()[1:-1])


def test_the_ca_block_runs_as_written_and_exports_that_cas_certificate(tmp_path: Path) -> None:
    """In a shell with a temporary home (the guide's `~/pair-ca`) and this virtualenv's `bin` on PATH,
    as `source .venv/bin/activate` leaves it."""
    script = _ca_block() + '\nprintf %s "$TF_VAR_roles_anywhere_ca_certificate" > "$HOME/exported.pem"\n'
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "TF_VAR_"))},
        "HOME": str(tmp_path),
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
    }
    done = subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", script],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    folder = tmp_path / "pair-ca"
    assert (folder / "ca.key").stat().st_mode & 0o777 == 0o600
    exported = (tmp_path / "exported.pem").read_bytes()
    assert exported.strip() == (folder / "ca.pem").read_bytes().strip()
    certificate = x509.load_pem_x509_certificate(exported)
    assert certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def _declared(root: str, kind: str) -> set[str]:
    names: set[str] = set()
    for path in (REPO_ROOT / root).glob("*.tf"):
        names |= set(re.findall(rf'^{kind} "([A-Za-z0-9_]+)"', path.read_text(), re.MULTILINE))
    return names


def _variables_set(text: str) -> set[str]:
    """Variables a deployer is told to set: top-level attributes of `hcl` blocks, `NAME = ...` in
    inline code, and `TF_VAR_NAME`."""
    names = set(re.findall(r"TF_VAR_([A-Za-z0-9_]+)", text))
    for block in _blocks(text):
        if block.startswith("```hcl"):
            names |= set(re.findall(r"^([a-z][a-z0-9_]*) *=", block, re.MULTILINE))
    names |= set(re.findall(r"`([a-z][a-z0-9_]*) = ", _without_blocks(text)))
    return names


def _table_fields(root: str) -> set[str]:
    """The attributes of one entry of the root's `tables` (its object type: `create`, `table_name`, ...)."""
    text = (REPO_ROOT / root / "variables.tf").read_text()
    declaration = text[text.index('variable "tables"') :].split("\n}\n", 1)[0]
    return set(re.findall(r"^ +([a-z_]+) += optional\(", declaration, re.MULTILINE))


@pytest.mark.parametrize("language", sorted(GUIDES))
def test_every_variable_the_guide_sets_is_a_variable_of_both_roots(language: str) -> None:
    """Or an attribute of a `tables` entry, which the guide names inline too (`create = false`)."""
    named = _variables_set(_text(language))
    assert {"tables", "roles_anywhere_ca_certificate", "peer_nat_public_ips"} <= named
    for root in ROOTS:
        known = _declared(root, "variable") | _table_fields(root)
        assert named <= known, f"neither variables nor table attributes of {root}: {named - known}"


@pytest.mark.parametrize("language", sorted(GUIDES))
def test_every_root_and_output_the_guide_reads_exists(language: str) -> None:
    text = _text(language)
    chdirs = re.findall(r"-chdir=(\S+)", text)
    assert set(chdirs) == set(ROOTS)
    reads = re.findall(r"terraform -chdir=(\S+) output(?: -json| -raw)? ([a-z_]+)", text)
    assert reads, "the guide reads outputs"
    for root, output in reads:
        assert output in _declared(root, "output"), f"{root} has no output {output}"


@pytest.mark.parametrize("language", sorted(GUIDES))
def test_every_make_target_the_guide_names_is_a_makefile_target(language: str) -> None:
    targets = set(re.findall(r"^([a-z][a-z-]*):.*## ", (REPO_ROOT / "Makefile").read_text(), re.MULTILINE))
    text = _text(language)
    commands = re.findall(r"`(make [^`]+)`", _without_blocks(text))
    commands += [line for block in _blocks(text) for line in block.splitlines() if line.startswith("make ")]
    named = {command.split()[1] for command in commands}
    assert named, "the guide runs make"
    assert named <= targets, f"not Makefile targets: {named - targets}"


@pytest.mark.parametrize("language", sorted(GUIDES))
def test_every_relative_link_resolves(language: str) -> None:
    text = _text(language)
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
    local = [link for link in links if not re.match(r"[a-z]+://", link)]
    assert local, "the guide links the project's documents"
    for link in local:
        assert (GUIDES[language].parent / link).exists(), f"{language}: {link}"


def _source_text() -> str:
    """What the project's code can say: the module's and the roots' Terraform (escaped quotes read as
    quotes), the CLI's and the engine's Python with adjacent string literals joined, the scripts."""
    paths = [
        *(REPO_ROOT / "modules" / "replication_endpoint").glob("*.tf"),
        *(REPO_ROOT / root / "variables.tf" for root in ROOTS),
        *(REPO_ROOT / "replication_ops").rglob("*.py"),
        *(REPO_ROOT / "functions" / "replication").glob("*.py"),
        *(REPO_ROOT / "scripts").glob("*"),
    ]
    text = "\n".join(path.read_text() for path in paths if path.is_file())
    text = text.replace('\\"', '"')
    return re.sub(r"\"\s*\n\s*f?\"", "", text)


def _quoted_messages(text: str) -> list[str]:
    """The backticked messages in the first column of the guide's error tables (header `message` or
    `提示`); `...` stands for what varies."""
    messages, in_table = [], False
    for line in text.splitlines():
        if re.match(r"\| (message|提示) \|", line):
            in_table = True
        elif not line.startswith("|"):
            in_table = False
        elif in_table and not line.startswith("| ---"):
            messages += re.findall(r"`([^`]+)`", line.split(" | ")[0])
    return messages


@pytest.mark.parametrize("language", sorted(GUIDES))
def test_every_error_the_guide_quotes_is_one_the_code_says(language: str) -> None:
    source = _source_text()
    messages = _quoted_messages(_text(language))
    assert len(messages) >= 15, "the guide's error tables"
    for message in messages:
        for part in (p.strip() for p in message.split("...")):
            if len(part) >= 6:
                assert part in source, f"{language}: {message!r}: {part!r} is said nowhere in the code"


def test_make_package_wrote_the_zips_the_guide_names() -> None:
    dist = REPO_ROOT / "dist" / "x86_64"
    if not dist.is_dir():
        pytest.skip("no dist/: `make test` runs `make package` first")
    text = _text("en")
    assert "dist/x86_64" in text and "forwarder.zip" in text and "replicator.zip" in text
    for name in ("forwarder.zip", "replicator.zip"):
        assert (dist / name).is_file()

"""The README, run as a newcomer runs it: a README command that stops working fails `make test`.

Its Python and shell blocks run against the local pair the operations end-to-end tests start
(``local_pair``, one environment for both), from a folder laid out like a fresh clone after `make up`
(``build/local`` is that pair's folder, ``.venv`` this virtualenv), with a newcomer's shell: no
``AWS_*`` variables, ``.venv/bin`` not on PATH (the README's ``source .venv/bin/activate`` puts it
there). The AWS CLI pair that `make up` prints runs the same way.

Blocks are read with pytest-codeblocks (``extract_from_file``: fenced blocks and the
``<!--pytest.mark.skip(reason=...)-->`` comment before a block), a maintained parser of exactly this.
Its own collector is not used: it runs every block in the repository folder with no fixtures, so it
would need a second environment started by hand beside the one the end-to-end tests already run.
A block that cannot run inside `make test` (`make demo`, `make test` itself) carries a skip mark whose
reason says how it is covered; the test below holds each reason to a test file that exists, and
every make target the README names to the Makefile, which the README's command table lists whole.
Every ``ddb-replication`` command line in the README, docs/operations.md, the deployment guides
(docs/deployment.md, docs/deployment.zh-CN.md) and the module's runbook
(modules/replication_endpoint/README.md), the deployment form included, must parse with the
CLI's own parser; a ``--help`` line must print its help (exit 0); a ``plan`` line that reads nothing
from AWS runs as written (exit 0, a monthly cost per side).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pytest_codeblocks import CodeBlock, extract_from_file

from replication_ops.cli import build_parser, check_combinations
from replication_ops.local.daemon import describe_environment
from replication_ops.local.terraform import terraform_available

REPO_ROOT = Path(__file__).resolve().parents[2]
README = REPO_ROOT / "README.md"
RUNNABLE = ("python", "bash", "sh")
BLOCKS = [block for block in extract_from_file(README) if block.syntax in RUNNABLE]
E2E = [
    pytest.mark.e2e,
    pytest.mark.skipif(not terraform_available(), reason="terraform is not on PATH"),
]


def _skip_reason(block: CodeBlock) -> str | None:
    for mark in block.marks:
        found = re.match(r"""pytest\.mark\.skip\(reason=["'](.+)["']\)$""", mark)
        if found:
            return found.group(1)
    return None


def _runnable() -> list[CodeBlock]:
    return [block for block in BLOCKS if _skip_reason(block) is None]


# -- what runs without the local pair ---------------------------------------------------------


def test_the_readme_has_runnable_blocks_and_each_other_block_says_how_it_is_covered() -> None:
    assert {block.syntax for block in _runnable()} >= {"python", "bash"}
    for block in BLOCKS:
        reason = _skip_reason(block)
        if reason is None:
            assert not block.marks, f"README line {block.lineno}: only skip(reason=...) marks are used"
            continue
        assert reason.startswith("not run inside make test"), f"README line {block.lineno}: {reason}"
        for test_file in re.findall(r"tests/[\w/]+\.py", reason):
            assert (REPO_ROOT / test_file).is_file(), f"README line {block.lineno} names {test_file}"


def _makefile_targets() -> set[str]:
    text = (REPO_ROOT / "Makefile").read_text()
    return set(re.findall(r"^([a-z][a-z-]*):.*## ", text, re.MULTILINE))


def test_the_readme_names_exactly_the_makefile_targets() -> None:
    text = README.read_text()
    in_code = {block_line for block in BLOCKS for block_line in block.code.splitlines()}
    named = set(re.findall(r"`make ([a-z][a-z-]*)", text))
    named |= {line.split()[1] for line in in_code if re.match(r"make [a-z]", line)}
    assert named <= _makefile_targets(), f"not Makefile targets: {sorted(named - _makefile_targets())}"
    table = text[text.index("## Commands") :].split("\n## ", 1)[0]
    listed = set(re.findall(r"`make ([a-z][a-z-]*)`", table))
    assert listed == _makefile_targets(), "the Commands table lists every target, and only those"


def _command_lines(text: str) -> list[str]:
    """Every `ddb-replication ...` command in a document: in code blocks and in `inline code`."""
    lines = []
    for line in text.splitlines():
        for span in re.findall(r"`(ddb-replication [^`]+)`", line) or [line.strip()]:
            if span.startswith("ddb-replication "):
                lines.append(span.split("  #", 1)[0].split(" # ", 1)[0].strip())
    return lines


def _definitions_of_r(text: str) -> list[str]:
    return re.findall(r'R="([^"]+)"', text)


DOCUMENTS = [
    "README.md",
    "docs/operations.md",
    "docs/deployment.md",
    "docs/deployment.zh-CN.md",
    "modules/replication_endpoint/README.md",
]


@pytest.mark.parametrize("document", DOCUMENTS)
def test_every_ddb_replication_command_in_the_docs_parses(
    document: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Against the CLI's own parser (flag names, values, combinations), from a clone-like folder
    where the paths the commands name exist."""
    # The module's inputs and outputs tables (terraform-docs) name commands in variable descriptions.
    text = re.sub(
        r"<!-- BEGIN_TF_DOCS -->.*<!-- END_TF_DOCS -->", "", (REPO_ROOT / document).read_text(), flags=re.S
    )
    (tmp_path / "build" / "local").mkdir(parents=True)
    (tmp_path / "build" / "local" / "environment.json").write_text("{}")
    (tmp_path / "envs").symlink_to(REPO_ROOT / "envs")
    monkeypatch.chdir(tmp_path)
    commands = _command_lines(text)
    assert commands, f"{document} shows no ddb-replication command"
    parser = build_parser()

    for command in commands:
        for r in _definitions_of_r(text) if "$R" in command else [""]:
            argv = shlex.split(command.replace("$R", r))[1:]
            try:
                args = parser.parse_args(argv)
            except SystemExit as refused:
                if "--help" in argv and refused.code == 0:
                    continue  # the help was printed: the line works
                pytest.fail(f"{document}: `{command}` with R={r!r} is refused (exit {refused.code})")
            assert check_combinations(args) is None, f"{document}: `{command}` with R={r!r}"


# -- what runs against the local pair ---------------------------------------------------------


@pytest.fixture(scope="module")
def clone(local_pair, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder as a fresh clone is after `make up`: build/local is the running pair's."""
    _, environment_json = local_pair
    folder = tmp_path_factory.mktemp("clone")
    (folder / "build").mkdir()
    (folder / "build" / "local").symlink_to(environment_json.parent)
    (folder / ".venv").symlink_to(Path(sys.prefix))
    (folder / "envs").symlink_to(REPO_ROOT / "envs")
    return folder


def _newcomers_environment() -> dict[str, str]:
    venv_bin = Path(sys.prefix) / "bin"
    path = [
        p for p in os.environ["PATH"].split(os.pathsep) if p and Path(p).resolve() != Path(venv_bin).resolve()
    ]
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "VIRTUAL_ENV", "POWERTOOLS_"))},
        "PATH": os.pathsep.join(path),
    }


def _run(syntax: str, code: str, folder: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    if syntax == "python":
        command = [sys.executable, "-c", code]
    else:
        command = ["bash", "-e", "-o", "pipefail", "-c", code]
    return subprocess.run(
        command,
        cwd=folder,
        env=_newcomers_environment(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.mark.e2e
@pytest.mark.skipif(not terraform_available(), reason="terraform is not on PATH")
@pytest.mark.parametrize("block", _runnable(), ids=lambda block: f"README line {block.lineno}")
def test_the_readme_block_runs_as_written(block: CodeBlock, clone: Path) -> None:
    done = _run(block.syntax or "bash", block.code, clone)
    assert done.returncode == 0, f"README line {block.lineno} failed:\n{done.stdout}\n{done.stderr}"
    if "put_item" in block.code:  # the example reads back on the other side what it wrote
        written = re.search(r'"name": "([^"]+)"', block.code)
        assert written, "the README's put_item example writes a name to read back"
        assert f"'name': '{written[1]}'" in done.stdout, done.stdout


@pytest.mark.e2e
@pytest.mark.skipif(not terraform_available(), reason="terraform is not on PATH")
@pytest.mark.skipif(shutil.which("aws") is None, reason="the AWS CLI is not on PATH")
def test_the_aws_cli_pair_make_up_prints_replicates(local_pair, clone: Path) -> None:
    _, environment_json = local_pair

    printed = describe_environment(json.loads(environment_json.read_text()))
    assert "a second or two later" in printed
    example = printed.split("write on one side", 1)[1].split("\n", 1)[1].split("\n\n", 1)[0]
    second = example.index("\n  AWS_ACCESS_KEY_ID=")
    put, get = example[:second], example[second + 1 :]
    done = _run("bash", put, clone, timeout=60)
    assert done.returncode == 0, done.stderr
    deadline = time.monotonic() + 30  # "a second or two"; generous for a loaded machine
    while True:
        got = _run("bash", get, clone, timeout=60)
        assert got.returncode == 0, got.stderr
        if '"Li Lei"' in got.stdout:
            break
        assert time.monotonic() < deadline, f"the get never showed the item: {got.stdout!r}"
        time.sleep(0.5)
    assert '"last_updater_region"' in got.stdout and '"cn-north-1"' in got.stdout


def _offline_plans() -> list[tuple[str, str]]:
    """Each docs' `ddb-replication plan` line that reads no AWS (rates given, no --cn-table/--us-table)."""
    found = []
    for document in DOCUMENTS:
        for command in _command_lines((REPO_ROOT / document).read_text()):
            argv = shlex.split(command)
            offline = not {"--help", "--cn-table", "--us-table"} & set(argv)
            if argv[1:2] == ["plan"] and len(argv) > 2 and offline:  # "`ddb-replication plan`" names it
                found.append((document, command))
    return found


@pytest.mark.parametrize(("document", "command"), _offline_plans())
def test_every_offline_plan_in_the_docs_runs_and_prints_a_monthly_cost(
    document: str,
    command: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """A plan needs nothing deployed, so the docs' plan lines run as written, from a folder without a
    build/bench.json (the plan's documented fallback figures): exit 0 and a monthly cost per side."""
    from replication_ops.cli import main

    argv = shlex.split(command)[1:]
    if "--prices" in argv:
        pytest.skip(f"{document}: `{command}` names the reader's own price file")
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "cn-north-1" in out and "us-east-1" in out and "month" in out, out

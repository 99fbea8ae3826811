#!/usr/bin/env python3
"""Build the Lambda deployment zips, one set per Lambda architecture, byte-for-byte reproducibly.

Each function zip (default: dist/x86_64/forwarder.zip, dist/x86_64/replicator.zip and the same
under dist/arm64/) holds at its root:

  * the function's own files from functions/<name>/ (app.py, handler ``app.handler``),
  * the shared engine package functions/replication/ as replication/,
  * the distributions pinned in requirements-lambda.txt (aws-lambda-powertools and its dependencies)
    as pip installs them for that architecture; boto3/botocore are not vendored, the python3.12
    runtime has them.

What is the project's own lives here: what goes into which zip, the trimming, the source checks and
the manifest. The rest is left to well-kept tools:

  * ``packaging`` reads the pins and the installed distributions' dependencies (PEP 508, markers
    evaluated for the Lambda runtime rather than for this machine);
  * pip installs the pins for the target platform (``pip install --no-deps --only-binary=:all:
    --platform manylinux2014_x86_64|manylinux2014_aarch64 --implementation cp --python-version 3.12
    --target DIR --report FILE``; https://pip.pypa.io/en/stable/cli/pip_install/), so compiled
    wheels (cp*-abi3 manylinux) are vendored for the right instruction set;
  * ``repro-zipfile`` writes the archive (fixed timestamp, SOURCE_DATE_EPOCH when set, fixed modes).

requirements-lambda.txt is the complete list of what is vendored: pip runs with --no-deps, because
a resolver would also install boto3/botocore, which the runtime provides and which must not be
vendored (the runtime's copy is the contract); the build then checks that every dependency the
installed distributions declare for Lambda is pinned or provided by the runtime.

Offline: wheels are downloaded once into the cache (``pip download`` into build/lambda/wheels/), and
every install is made from there alone (``--isolated --no-index --find-links``); each architecture's
installed tree is kept (build/lambda/site-packages/<arch>-<key>/, the key covering pins, platform and
pip version; earlier sets stay until ``make clean``), so a build whose pins did not change runs no pip
at all, and one whose wheels are cached needs no network. ``--offline`` never downloads.

The zips are reproducible: entries sorted, no directory entries, one fixed timestamp (1980-01-01
00:00:00, or SOURCE_DATE_EPOCH clamped to what zip can hold), mode 0644, deflate at a fixed level.
File mtimes, modes and the checkout path do not matter. Left out: __pycache__/, *.pyc, tests,
dotfiles, what pip writes about the install (RECORD, INSTALLER, REQUESTED, direct_url.json), scripts
and data files (outside site-packages), and the Powertools modules that need extras which are not
vendored (see POWERTOOLS_TRIMMED).
"""

from __future__ import annotations

import argparse
import ast
import base64
import contextlib
import dataclasses
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from importlib import metadata
from pathlib import Path
from urllib.parse import unquote, urlsplit

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version
from repro_zipfile import ReproducibleZipFile

REPO_ROOT = Path(__file__).resolve().parent.parent

DEFAULT_FUNCTIONS = ("forwarder", "replicator")
SHARED_PACKAGE = "replication"
HANDLER_MODULE = "app"
HANDLER_NAME = "handler"

# The target: the python3.12 Lambda runtime. Lambda's architecture names (the functions'
# `architectures`) -> the wheel platform pip installs for and the runtime's platform.machine().
LAMBDA_PYTHON_VERSION = "3.12"
ARCHITECTURES = {"x86_64": "manylinux2014_x86_64", "arm64": "manylinux2014_aarch64"}
MACHINES = {"x86_64": "x86_64", "arm64": "aarch64"}

# Distributions the python3.12 runtime already carries. A vendored distribution may depend on them
# without a pin; boto3 and botocore must not be pinned at all (the runtime's copy is the contract).
RUNTIME_PROVIDED = frozenset(
    {"boto3", "botocore", "s3transfer", "jmespath", "python-dateutil", "urllib3", "six"}
)
NOT_VENDORED = frozenset({"boto3", "botocore"})

# Powertools modules left out of the zips: each needs an extra we do not vendor (or is the HTTP
# event handler, whose OpenAPI part needs pydantic and which ships a 1.7 MB Swagger UI).
# Nothing that is kept imports them at module level; the build refuses function code that does.
POWERTOOLS_TRIMMED = (
    "aws_lambda_powertools.event_handler",  # API Gateway/AppSync/Bedrock resolvers (+ pydantic)
    "aws_lambda_powertools.utilities.parser",  # extra "parser": pydantic
    "aws_lambda_powertools.utilities.validation",  # extra "validation": fastjsonschema
    "aws_lambda_powertools.utilities.data_masking",  # extra "datamasking": aws-encryption-sdk
    "aws_lambda_powertools.utilities.auth_alpha",  # extras "jwt"/"oauth2": pyjwt, cryptography
    "aws_lambda_powertools.utilities.kafka",  # extras "kafka-consumer-*": avro, protobuf
    "aws_lambda_powertools.metrics.provider.datadog",  # extra "datadog": datadog-lambda
    "aws_lambda_powertools.utilities.idempotency.persistence.redis",  # extra "redis"
    "aws_lambda_powertools.utilities.idempotency.persistence.cache",  # extras "redis"/"valkey"
    "aws_lambda_powertools.utilities.idempotency.serialization.pydantic",  # pydantic
)

# Zip format constants.
ZIP_MIN_EPOCH = 315532800  # 1980-01-01T00:00:00Z, the earliest time a zip entry can carry
ZIP_MAX_EPOCH = 4354819198  # 2107-12-31T23:59:58Z, the latest
ZIP_CREATE_SYSTEM_UNIX = 3  # also on Windows, where zipfile would write 0
COMPRESS_LEVEL = 9

# Lambda limits (direct upload and unzipped size).
LAMBDA_MAX_ZIP_BYTES = 50 * 1024 * 1024
LAMBDA_MAX_UNZIPPED_BYTES = 250 * 1024 * 1024

# What never goes into a zip.
JUNK_DIRS = frozenset({"__pycache__", "tests", "test", ".pytest_cache", ".mypy_cache", ".ruff_cache"})
JUNK_SUFFIXES = (".pyc", ".pyo", "~", ".swp", ".orig", ".rej")
# What an installer writes about an install (https://packaging.python.org/en/latest/specifications/
# recording-installed-packages/): it differs by installer and path, and the runtime never reads it.
INSTALLER_FILES = frozenset({"RECORD", "INSTALLER", "REQUESTED", "direct_url.json"})

STDERR_TAIL_LINES = 25
INSTALL_REPORT = "pip-report.json"


class BuildError(Exception):
    """A problem the user must fix; printed without a traceback."""


# --------------------------------------------------------------------------- small helpers


def log(message: str) -> None:
    print(f"build_lambdas: {message}", file=sys.stderr, flush=True)


def display_path(path: Path) -> str:
    """The path relative to the working directory when it lies below it, else absolute."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def zip_epoch(environ: Mapping[str, str]) -> int:
    """The time every entry carries: SOURCE_DATE_EPOCH (https://reproducible-builds.org/specs/
    source-date-epoch/), clamped to what zip can hold and to its 2-second steps; else 1980-01-01."""
    raw = environ.get("SOURCE_DATE_EPOCH", "").strip()
    if not raw:
        return ZIP_MIN_EPOCH
    try:
        epoch = int(raw)
    except ValueError:
        raise BuildError(f"SOURCE_DATE_EPOCH must be an integer (seconds since 1970), got {raw!r}") from None
    epoch = min(max(epoch, ZIP_MIN_EPOCH), ZIP_MAX_EPOCH)
    return epoch - epoch % 2


@contextlib.contextmanager
def source_date_epoch(epoch: int) -> Iterator[None]:
    """repro-zipfile reads SOURCE_DATE_EPOCH itself: give it the clamped value while it writes."""
    before = os.environ.get("SOURCE_DATE_EPOCH")
    os.environ["SOURCE_DATE_EPOCH"] = str(epoch)
    try:
        yield
    finally:
        if before is None:
            del os.environ["SOURCE_DATE_EPOCH"]
        else:
            os.environ["SOURCE_DATE_EPOCH"] = before


# --------------------------------------------------------------------------- requirements


@dataclasses.dataclass(frozen=True)
class Pin:
    requirement: Requirement
    line: int

    @property
    def key(self) -> str:
        return canonicalize_name(self.requirement.name)

    @property
    def spec(self) -> str:
        return str(self.requirement)


def _pin_problem(requirement: Requirement) -> str | None:
    if requirement.url:
        return "not a requirement of the form name==version"
    specifiers = list(requirement.specifier)
    if len(specifiers) != 1 or specifiers[0].operator not in ("==", "===") or "*" in specifiers[0].version:
        return "unpinned requirement; pin an exact version (name==X.Y.Z)"
    if requirement.extras:
        return (
            "extras are not installed (dependencies come only from this file, --no-deps); "
            "pin the extra's dependencies instead"
        )
    if requirement.marker:
        # pip evaluates a requirement's marker for this machine, not for --platform.
        return "environment markers are not supported (the target is fixed: Lambda python3.12)"
    if canonicalize_name(requirement.name) in NOT_VENDORED:
        return f"{requirement.name} must not be vendored; the Lambda python3.12 runtime provides it"
    return None


def parse_requirements(path: Path) -> list[Pin]:
    """Read requirements-lambda.txt: one ``name==version`` a line (PEP 508); anything looser is refused."""
    if not path.is_file():
        raise BuildError(f"requirements file not found: {path}")
    pins: dict[str, Pin] = {}
    problems: list[str] = []
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = re.sub(r"(^|\s)#.*$", "", raw).strip()
        if not line:
            continue
        where = f"{path.name}:{number}: {raw.strip()!r}"
        if line.startswith("-") or " --" in line:
            problems.append(f"{where}: pip options (-r, -e, --hash, --index-url, ...) are not supported here")
            continue
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            problems.append(f"{where}: not a requirement of the form name==version")
            continue
        problem = _pin_problem(requirement)
        pin = Pin(requirement, number)
        if problem is None and pin.key in pins:
            problem = f"{requirement.name} is already pinned on line {pins[pin.key].line}"
        if problem:
            problems.append(f"{where}: {problem}")
        else:
            pins[pin.key] = pin
    if problems:
        raise BuildError(f"{path} has problems:\n  " + "\n  ".join(problems))
    return list(pins.values())


# --------------------------------------------------------------------------- vendored distributions


@dataclasses.dataclass(frozen=True)
class Installed:
    """The pins as pip installed them for one architecture."""

    architecture: str
    site: Path  # pip's --target
    report: dict  # pip's installation report (https://pip.pypa.io/en/stable/reference/installation-report/)

    def distributions(self) -> list[dict[str, str]]:
        """name, version, wheel file name and its sha256 of each installed distribution, by name."""
        listed = []
        for item in self.report.get("install", []):
            info = item.get("download_info", {})
            listed.append(
                {
                    "name": item["metadata"]["name"],
                    "version": item["metadata"]["version"],
                    "wheel": unquote(urlsplit(info.get("url", "")).path.rpartition("/")[2]),
                    "sha256": info.get("archive_info", {}).get("hashes", {}).get("sha256", ""),
                }
            )
        return sorted(listed, key=lambda d: canonicalize_name(d["name"]))


def _pip(action: str, architecture: str, pins: Sequence[Pin], *options: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "pip",
        action,
        "--no-deps",
        "--only-binary=:all:",
        "--platform",
        ARCHITECTURES[architecture],
        "--implementation",
        "cp",
        "--python-version",
        LAMBDA_PYTHON_VERSION,
        "--disable-pip-version-check",
        "--no-input",
        *options,
        *(pin.spec for pin in pins),
    ]


def _pip_said(done: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in (done.stderr or done.stdout or "").splitlines() if line.strip()]
    return "\n    ".join(lines[-STDERR_TAIL_LINES:]) or "(nothing)"


def install(pins: Sequence[Pin], architecture: str, cache: Path, *, offline: bool) -> Installed:
    """pip installs the pins for one architecture from the wheel cache (downloading what it lacks,
    unless offline); the installed tree is kept under a key of pins, platform and pip version."""
    key = hashlib.sha256(
        json.dumps(
            [
                ARCHITECTURES[architecture],
                LAMBDA_PYTHON_VERSION,
                metadata.version("pip"),
                [p.spec for p in pins],
            ]
        ).encode()
    ).hexdigest()[:16]
    sites = cache / "site-packages"
    kept = sites / f"{architecture}-{key}"
    if (kept / INSTALL_REPORT).is_file():
        log(f"{architecture}: pins installed already ({display_path(kept)})")
        return Installed(architecture, kept / "site", json.loads((kept / INSTALL_REPORT).read_text()))
    wheels = cache / "wheels"
    sites.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{architecture}-", dir=sites))
    try:
        # Only the cache's wheels: no index, and neither the environment's nor a configuration file's
        # settings (PIP_FIND_LINKS, say): --isolated, PIP_CONFIG_FILE=os.devnull
        # (https://pip.pypa.io/en/stable/topics/configuration/).
        command = _pip(
            "install",
            architecture,
            pins,
            "--isolated",
            "--no-index",
            "--find-links",
            str(wheels),
            "--no-compile",
            "--target",
            str(work / "site"),
            "--report",
            str(work / INSTALL_REPORT),
            "--quiet",
        )
        isolated = {**os.environ, "PIP_CONFIG_FILE": os.devnull}
        done = subprocess.run(command, capture_output=True, text=True, check=False, env=isolated)
        if done.returncode != 0 and offline:
            raise BuildError(
                f"--offline, but the wheel cache {display_path(wheels)} cannot serve {architecture}; build "
                f"once without --offline to fill it. pip said:\n    {_pip_said(done)}"
            )
        if done.returncode != 0:
            log(f"{architecture}: downloading the pinned wheels into {display_path(wheels)}")
            fetched = subprocess.run(
                _pip("download", architecture, pins, "--dest", str(wheels), "--quiet"),
                capture_output=True,
                text=True,
                check=False,
            )
            if fetched.returncode != 0:
                raise BuildError(
                    f"pip download failed for {architecture} (exit {fetched.returncode}); "
                    f"pip said:\n    {_pip_said(fetched)}"
                )
            done = subprocess.run(command, capture_output=True, text=True, check=False, env=isolated)
            if done.returncode != 0:
                raise BuildError(f"pip install failed for {architecture}; pip said:\n    {_pip_said(done)}")
        with contextlib.suppress(OSError):  # a concurrent build kept the same set first
            os.replace(work, kept)
        if not (kept / INSTALL_REPORT).is_file():
            raise BuildError(f"could not keep the installed set in {kept}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    log(f"{architecture}: installed {', '.join(p.spec for p in pins) or 'nothing'}")
    return Installed(architecture, kept / "site", json.loads((kept / INSTALL_REPORT).read_text()))


def lambda_environment(architecture: str) -> dict[str, str]:
    """PEP 508 marker values of the Lambda python3.12 runtime on this architecture."""
    return {
        "implementation_name": "cpython",
        "implementation_version": f"{LAMBDA_PYTHON_VERSION}.0",
        "os_name": "posix",
        "platform_machine": MACHINES[architecture],
        "platform_python_implementation": "CPython",
        "platform_system": "Linux",
        "python_full_version": f"{LAMBDA_PYTHON_VERSION}.0",
        "python_version": LAMBDA_PYTHON_VERSION,
        "sys_platform": "linux",
        "extra": "",
    }


def check_dependencies(installed: Installed) -> None:
    """Every dependency the installed distributions declare for Lambda is pinned (in a version it
    accepts) or provided by the runtime: pip ran with --no-deps."""
    environment = lambda_environment(installed.architecture)
    items = [item["metadata"] for item in installed.report.get("install", [])]
    versions = {canonicalize_name(m["name"]): Version(m["version"]) for m in items}
    problems: list[str] = []
    for item in items:
        for text in item.get("requires_dist", []):
            requirement = Requirement(text)
            if requirement.marker is not None and not requirement.marker.evaluate(environment):
                continue  # an extra we do not install, or another platform's dependency
            dependency = canonicalize_name(requirement.name)
            owner = f"{item['name']}=={item['version']}"
            if dependency in versions:
                if not requirement.specifier.contains(versions[dependency], prereleases=True):
                    problems.append(
                        f"{owner} requires {requirement}, but {dependency}=={versions[dependency]} is pinned"
                    )
            elif dependency not in RUNTIME_PROVIDED:
                problems.append(f"{owner} requires {requirement}, which is not pinned")
    if problems:
        raise BuildError(
            "requirements-lambda.txt is missing dependencies (pins are installed with --no-deps):\n  "
            + "\n  ".join(problems)
        )


def _powertools_trimmed(path: str) -> bool:
    for module in POWERTOOLS_TRIMMED:
        base = module.replace(".", "/")
        if path == base + ".py" or path.startswith(base + "/"):
            return True
    return False


def vendored_files(installed: Installed) -> dict[str, bytes]:
    """zip path -> content of every file the distributions installed into site-packages (their
    RECORD), less scripts and data files (outside it), installer records, caches, tests and the
    trimmed Powertools modules."""
    files: dict[str, bytes] = {}
    for distribution in metadata.distributions(path=[str(installed.site)]):
        for record in distribution.files or ():
            parts = record.parts
            if ".." in parts or parts[0].startswith("/"):
                continue
            if parts[0].endswith(".dist-info") and parts[-1] in INSTALLER_FILES:
                continue
            if any(p in ("__pycache__", "tests") for p in parts[:-1]) or parts[-1].endswith((".pyc", ".pyo")):
                continue
            if _is_test_module(parts[-1]):
                continue
            path = "/".join(parts)
            if not _powertools_trimmed(path):
                files[path] = (installed.site / path).read_bytes()
    return files


# --------------------------------------------------------------------------- project sources


def _is_junk(relative: Path, is_dir: bool) -> bool:
    name = relative.name
    if name.startswith(".") or name in ("__pycache__",):
        return True
    if is_dir:
        return name in JUNK_DIRS or name.endswith(".egg-info")
    return name.endswith(JUNK_SUFFIXES) or name == "conftest.py" or _is_test_module(name)


def _is_test_module(name: str) -> bool:
    """A test module, or its type stub (cryptography's ``_rust/test_support.pyi``)."""
    stem, _, suffix = name.rpartition(".")
    return suffix in ("py", "pyi") and (stem.startswith("test_") or stem.endswith("_test"))


def collect_tree(root: Path, prefix: str) -> dict[str, Path]:
    """zip path -> file for every non-junk file below root (sorted walk, symlinked files followed)."""
    files: dict[str, Path] = {}
    for current, dirs, names in os.walk(root):
        here = Path(current)
        kept_dirs = []
        for d in sorted(dirs):
            if _is_junk(here.relative_to(root) / d, is_dir=True):
                continue
            if (here / d).is_symlink():
                raise BuildError(f"{here / d} is a symlinked directory; copy it or remove it")
            kept_dirs.append(d)
        dirs[:] = kept_dirs
        for name in sorted(names):
            path = here / name
            relative = path.relative_to(root)
            if _is_junk(relative, is_dir=False) or not path.is_file():
                continue
            files[prefix + relative.as_posix()] = path
    return files


def _defines_handler(tree: ast.Module) -> bool:
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == HANDLER_NAME:
            return True
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == HANDLER_NAME for t in node.targets
        ):
            return True
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and node.target.id == HANDLER_NAME
        ):
            return True
        if isinstance(node, ast.Import | ast.ImportFrom) and any(
            (alias.asname or alias.name) == HANDLER_NAME for alias in node.names
        ):
            return True
    return False


def _imported_modules(tree: ast.Module) -> Iterator[tuple[str, int]]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module, node.lineno
            for alias in node.names:
                yield f"{node.module}.{alias.name}", node.lineno


def check_sources(files: dict[str, Path], label: str) -> None:
    """Parse the project's Python files: the handler exists, nothing imports a trimmed module."""
    problems: list[str] = []
    for arcname, path in files.items():
        if not arcname.endswith(".py"):
            continue
        try:
            tree = ast.parse(path.read_bytes(), filename=str(path))
        except SyntaxError as exc:
            raise BuildError(f"{path}:{exc.lineno}: syntax error: {exc.msg}") from None
        if arcname == f"{HANDLER_MODULE}.py" and not _defines_handler(tree):
            problems.append(
                f"{path}: defines no top-level {HANDLER_NAME!r} (the Lambda handler is app.handler)"
            )
        for module, line in _imported_modules(tree):
            for trimmed in POWERTOOLS_TRIMMED:
                if module == trimmed or module.startswith(trimmed + "."):
                    problems.append(
                        f"{path}:{line}: imports {module}, which the zips leave out "
                        f"(POWERTOOLS_TRIMMED in {Path(__file__).name}; its extra is not vendored)"
                    )
    if problems:
        raise BuildError(f"{label}:\n  " + "\n  ".join(problems))


# --------------------------------------------------------------------------- zip writing


def write_zip(path: Path, entries: dict[str, bytes], epoch: int) -> None:
    """Write entries sorted with repro-zipfile (fixed time and mode), made on Unix, no directory entries."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        with (
            source_date_epoch(epoch),
            ReproducibleZipFile(
                tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=COMPRESS_LEVEL
            ) as zf,
        ):
            for arcname in sorted(entries):
                info = zipfile.ZipInfo(arcname)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.create_system = ZIP_CREATE_SYSTEM_UNIX
                zf.writestr(info, entries[arcname], compresslevel=COMPRESS_LEVEL)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@dataclasses.dataclass(frozen=True)
class ZipFigures:
    name: str
    architecture: str
    path: Path
    size: int
    files: int
    unzipped: int
    sha256: str
    sha256_base64: str

    @classmethod
    def of(cls, name: str, architecture: str, path: Path) -> ZipFigures:
        data = path.read_bytes()
        digest = hashlib.sha256(data)
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
        return cls(
            name=name,
            architecture=architecture,
            path=path,
            size=len(data),
            files=len(infos),
            unzipped=sum(i.file_size for i in infos),
            sha256=digest.hexdigest(),
            sha256_base64=base64.b64encode(digest.digest()).decode("ascii"),
        )

    def manifest_entry(self) -> dict[str, object]:
        return {
            "zip": self.path.name,
            "bytes": self.size,
            "kib": round(self.size / 1024, 1),
            "files": self.files,
            "unzipped_bytes": self.unzipped,
            "sha256": self.sha256,
            "sha256_base64": self.sha256_base64,
            "handler": f"{HANDLER_MODULE}.{HANDLER_NAME}",
            "runtime": f"python{LAMBDA_PYTHON_VERSION}",
            "architecture": self.architecture,
        }


# --------------------------------------------------------------------------- the build


def build_function(
    name: str,
    *,
    source_root: Path,
    shared: dict[str, Path],
    vendored: Mapping[str, bytes],
    architecture: str,
    out: Path,
    epoch: int,
) -> ZipFigures:
    function_dir = source_root / "functions" / name
    if not (function_dir / f"{HANDLER_MODULE}.py").is_file():
        raise BuildError(
            f"function {name!r}: {function_dir / (HANDLER_MODULE + '.py')} does not exist "
            f"(the handler is {HANDLER_MODULE}.{HANDLER_NAME})"
        )
    own = collect_tree(function_dir, "")
    check_sources(own, f"function {name!r} cannot be packaged")

    origin: dict[str, str] = {}
    entries: dict[str, bytes] = {}

    def add(arcname: str, data: bytes, source: str) -> None:
        if arcname in entries:
            raise BuildError(
                f"function {name!r}: zip path {arcname} comes from both {origin[arcname]} and {source}"
            )
        entries[arcname] = data
        origin[arcname] = source

    for arcname, path in own.items():
        add(arcname, path.read_bytes(), f"functions/{name}/")
    for arcname, path in shared.items():
        add(arcname, path.read_bytes(), f"functions/{SHARED_PACKAGE}/")
    for arcname, data in vendored.items():
        add(arcname, data, "requirements-lambda.txt")

    unzipped = sum(len(d) for d in entries.values())
    if unzipped > LAMBDA_MAX_UNZIPPED_BYTES:
        raise BuildError(f"function {name!r}: {unzipped} bytes unzipped exceeds Lambda's 250 MB limit")
    target = out / f"{name}.zip"
    write_zip(target, entries, epoch)
    figures = ZipFigures.of(name, architecture, target)
    log(
        f"{architecture}/{name}: {len(own)} own + {len(shared)} {SHARED_PACKAGE}/ + "
        f"{len(vendored)} vendored files -> {display_path(target)}"
    )
    if figures.size > LAMBDA_MAX_ZIP_BYTES:
        log(f"warning: {display_path(target)} is over 50 MB: upload it through S3, not directly")
    return figures


def write_manifest(
    out: Path, architecture: str, built: Sequence[ZipFigures], installed: Installed, epoch: int
) -> Path:
    """<arch>/manifest.json: figures of every zip built now, plus still-present zips of earlier builds."""
    path = out / "manifest.json"
    functions = {f.name: f.manifest_entry() for f in built}
    try:
        previous = json.loads(path.read_text(encoding="utf-8")).get("functions", {})
    except (OSError, ValueError, AttributeError):
        previous = {}
    for name in sorted(previous) if isinstance(previous, dict) else ():
        zip_path = out / f"{name}.zip"
        if name not in functions and re.fullmatch(r"[A-Za-z0-9_.-]+", name) and zip_path.is_file():
            try:
                functions[name] = ZipFigures.of(name, architecture, zip_path).manifest_entry()
            except zipfile.BadZipFile:
                continue
    manifest = {
        "architecture": architecture,
        "functions": dict(sorted(functions.items())),
        "vendored": installed.distributions(),
        "zip_timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch)),
        "source_date_epoch": epoch,
        "compress_level": COMPRESS_LEVEL,
    }
    atomic_write(path, (json.dumps(manifest, indent=2) + "\n").encode("utf-8"))
    return path


def print_table(figures: Iterable[ZipFigures]) -> None:
    rows = [
        ("zip", "size KiB", "files", "sha256 (hex)", "sha256 (base64, = filebase64sha256)"),
        *(
            (display_path(f.path), f"{f.size / 1024:.1f}", str(f.files), f.sha256, f.sha256_base64)
            for f in figures
        ),
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    right = {1, 2}
    for index, row in enumerate(rows):
        cells = [cell.rjust(widths[i]) if i in right else cell.ljust(widths[i]) for i, cell in enumerate(row)]
        print("  ".join(cells).rstrip())
        if index == 0:
            print("  ".join("-" * w for w in widths))


def build(args: argparse.Namespace) -> list[ZipFigures]:
    source_root: Path = args.source_root.resolve()
    out: Path = (args.out if args.out is not None else source_root / "dist").resolve()
    requirements: Path = (args.requirements or source_root / "requirements-lambda.txt").resolve()
    cache: Path = args.cache.resolve()
    names: list[str] = list(dict.fromkeys(args.functions or DEFAULT_FUNCTIONS))
    architectures: list[str] = list(dict.fromkeys(args.architectures or ARCHITECTURES))
    for name in names:
        if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*", name):
            raise BuildError(f"invalid function name {name!r}: a directory name under functions/ is expected")
        if name == SHARED_PACKAGE:
            raise BuildError(f"{SHARED_PACKAGE!r} is the shared package, not a function")

    epoch = zip_epoch(os.environ)
    log(
        f"building {', '.join(names)} for {', '.join(architectures)} from {display_path(source_root)} "
        f"into {display_path(out)} (entry time {time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(epoch))} UTC)"
    )

    shared_dir = source_root / "functions" / SHARED_PACKAGE
    if not (shared_dir / "__init__.py").is_file():
        raise BuildError(f"the shared package is missing: {shared_dir / '__init__.py'} does not exist")
    for name in names:  # report a missing function before pip runs
        if not (source_root / "functions" / name).is_dir():
            raise BuildError(
                f"function {name!r}: directory {source_root / 'functions' / name} does not exist"
            )
    shared = collect_tree(shared_dir, f"{SHARED_PACKAGE}/")
    check_sources(shared, f"the shared package functions/{SHARED_PACKAGE}/ cannot be packaged")

    pins = parse_requirements(requirements)
    log(f"{display_path(requirements)}: {', '.join(p.spec for p in pins) or 'no pins'}")
    built: list[ZipFigures] = []
    for architecture in architectures:
        installed = install(pins, architecture, cache, offline=args.offline)
        check_dependencies(installed)
        vendored = vendored_files(installed)
        figures = [
            build_function(
                name,
                source_root=source_root,
                shared=shared,
                vendored=vendored,
                architecture=architecture,
                out=out / architecture,
                epoch=epoch,
            )
            for name in names
        ]
        manifest = write_manifest(out / architecture, architecture, figures, installed, epoch)
        log(f"manifest: {display_path(manifest)}")
        built.extend(figures)
    print_table(built)
    return built


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="build_lambdas.py",
        description=(
            "Build reproducible Lambda zips for the python3.12 runtime, one set per architecture "
            "(default: dist/x86_64/ and dist/arm64/, each with forwarder.zip and replicator.zip). Each zip "
            "holds functions/<name>/ (handler app.handler), the shared functions/replication/ package "
            "as replication/, and the distributions pinned in requirements-lambda.txt as pip installs "
            "them for that architecture (boto3/botocore come from the runtime). Prints a table of "
            "size, sha256 and base64 sha256 (Terraform's filebase64sha256) and writes manifest.json "
            "next to each architecture's zips."
        ),
        epilog=(
            "pip installs the pins with --no-deps --only-binary=:all: --platform "
            "manylinux2014_x86_64|manylinux2014_aarch64 --implementation cp --python-version 3.12, "
            "from the cache's wheels/ (--no-index --find-links), downloading what is missing first. "
            "An installed set is kept per architecture and reused while the pins do not change: then pip "
            "does not run at all. Zip entries carry 1980-01-01 00:00:00, or SOURCE_DATE_EPOCH when set. "
            "Exit status: 0 built, 1 build error, 2 usage error."
        ),
    )
    parser.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help="the zips go to DIR/<architecture>/ with a manifest.json (default: SOURCE_ROOT/dist)",
    )
    parser.add_argument(
        "--functions",
        nargs="+",
        metavar="NAME",
        help=f"functions to build, directories under functions/ (default: {' '.join(DEFAULT_FUNCTIONS)})",
    )
    parser.add_argument(
        "--architectures",
        nargs="+",
        choices=tuple(ARCHITECTURES),
        metavar="ARCH",
        help=f"Lambda architectures to build for: {' '.join(ARCHITECTURES)} (default: both)",
    )
    parser.add_argument(
        "--source-root",
        type=Path,
        default=REPO_ROOT,
        metavar="DIR",
        help="tree that holds functions/ and requirements-lambda.txt (default: this repository)",
    )
    parser.add_argument(
        "--requirements",
        type=Path,
        metavar="FILE",
        help="the pinned vendored requirements (default: SOURCE_ROOT/requirements-lambda.txt)",
    )
    parser.add_argument(
        "--cache",
        type=Path,
        default=REPO_ROOT / "build" / "lambda",
        metavar="DIR",
        help="downloaded wheels (DIR/wheels/) and installed sets (DIR/site-packages/) are kept here "
        "(default: build/lambda of this repository)",
    )
    parser.add_argument(
        "--offline",
        action="store_true",
        help="never download: fail when the cache cannot serve the pins",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    try:
        built = build(args)
    except BuildError as exc:
        print(f"build_lambdas: error: {exc}", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        print("build_lambdas: interrupted", file=sys.stderr)
        return 130
    log(f"built {len(built)} zip(s) in {time.monotonic() - started:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

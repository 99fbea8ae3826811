#!/usr/bin/env python3
"""Build the Lambda deployment zips, byte-for-byte reproducibly.

Each function zip (default: dist/forwarder.zip and dist/replicator.zip) holds at its root:

  * the function's own files from functions/<name>/ (app.py, handler ``app.handler``),
  * the shared engine package functions/replication/ as replication/,
  * the pure-Python wheels pinned in requirements-lambda.txt (aws-lambda-powertools and its
    dependencies), unpacked; boto3/botocore are not vendored, the python3.12 runtime has them.

Wheels are fetched for the Lambda platform, not for this machine (``pip download --platform
manylinux2014_x86_64 --platform manylinux2014_aarch64 --implementation cp --python-version 3.12
--only-binary=:all: --no-deps``) and kept in a wheel cache (build/wheels/): once every pin is
cached, pip is not run at all, so later builds work offline. Only pure-Python wheels are accepted:
the zips serve both Lambda architectures.

The zips are reproducible: entries sorted, no directory entries, one fixed timestamp
(1980-01-01 00:00:00, or SOURCE_DATE_EPOCH when set), mode 0644 on every file, deflate at a fixed
level, no extra fields, no comment. File mtimes, modes and the checkout path do not matter.
Caches and junk are left out: __pycache__/, *.pyc, tests, dotfiles, the wheels' RECORD files
(and INSTALLER/REQUESTED/direct_url.json), data scripts, and the Powertools modules that need
extras which are not vendored (see POWERTOOLS_TRIMMED).

Stdlib only; runs in the project's virtualenv (Python 3.11+).
"""

from __future__ import annotations

import argparse
import ast
import base64
import dataclasses
import email.parser
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import zipfile
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

DEFAULT_FUNCTIONS = ("forwarder", "replicator")
SHARED_PACKAGE = "replication"
HANDLER_MODULE = "app"
HANDLER_NAME = "handler"

# The target: the python3.12 Lambda runtime, on either architecture.
LAMBDA_PYTHON_VERSION = "3.12"
LAMBDA_PLATFORMS = ("manylinux2014_x86_64", "manylinux2014_aarch64")

# Distributions the python3.12 runtime already carries. A vendored wheel may depend on them
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
ZIP_FILE_ATTR = (0o100644 & 0xFFFF) << 16  # regular file, rw-r--r--
ZIP_CREATE_SYSTEM_UNIX = 3
COMPRESS_LEVEL = 9

# Lambda limits (direct upload and unzipped size).
LAMBDA_MAX_ZIP_BYTES = 50 * 1024 * 1024
LAMBDA_MAX_UNZIPPED_BYTES = 250 * 1024 * 1024

# What never goes into a zip.
JUNK_DIRS = frozenset({"__pycache__", "tests", "test", ".pytest_cache", ".mypy_cache", ".ruff_cache"})
JUNK_SUFFIXES = (".pyc", ".pyo", "~", ".swp", ".orig", ".rej")
DIST_INFO_NOISE = frozenset(
    {"RECORD", "RECORD.jws", "RECORD.p7s", "INSTALLER", "REQUESTED", "direct_url.json"}
)

PIN_RE = re.compile(
    r"^(?P<name>[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)\s*(?P<extras>\[[^\]]*\])?\s*"
    r"(?P<op>===|==|~=|!=|<=|>=|<|>)?\s*(?P<version>[^;\s]*)\s*(?P<marker>;.*)?$"
)
VERSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.!+_-]*$")
STDERR_TAIL_LINES = 25


class BuildError(Exception):
    """A problem the user must fix; printed without a traceback."""


# --------------------------------------------------------------------------- small helpers


def log(message: str) -> None:
    print(f"build_lambdas: {message}", file=sys.stderr, flush=True)


def normalize_name(name: str) -> str:
    """PEP 503 name normalization."""
    return re.sub(r"[-_.]+", "-", name).lower()


def version_key(version: str) -> tuple[tuple[int, ...], str]:
    """A comparison key under which PEP 440-equal spellings meet (1.0 == 1.0.0, 1.0-post1 == 1.0.post1)."""
    v = version.strip().lower()
    v = v.removeprefix("v")
    match = re.match(r"^(\d+(?:\.\d+)*)(.*)$", v)
    if not match:
        return ((), v)
    release = [int(part) for part in match.group(1).split(".")]
    while len(release) > 1 and release[-1] == 0:
        release.pop()
    rest = re.sub(r"[-_.]", "", match.group(2))
    return (tuple(release), rest)


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


def zip_timestamp(environ: Mapping[str, str]) -> tuple[tuple[int, int, int, int, int, int], int]:
    """The (date_time, epoch) every entry carries: SOURCE_DATE_EPOCH, clamped to what zip can hold."""
    raw = environ.get("SOURCE_DATE_EPOCH", "").strip()
    if raw:
        try:
            epoch = int(raw)
        except ValueError:
            raise BuildError(
                f"SOURCE_DATE_EPOCH must be an integer (seconds since 1970), got {raw!r}"
            ) from None
    else:
        epoch = ZIP_MIN_EPOCH
    epoch = min(max(epoch, ZIP_MIN_EPOCH), ZIP_MAX_EPOCH)
    epoch -= epoch % 2  # zip stores seconds in 2-second steps
    t = time.gmtime(epoch)
    return (t.tm_year, t.tm_mon, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec), epoch


# --------------------------------------------------------------------------- requirements


@dataclasses.dataclass(frozen=True)
class Pin:
    name: str  # as written
    version: str
    line: int

    @property
    def key(self) -> str:
        return normalize_name(self.name)

    @property
    def spec(self) -> str:
        return f"{self.name}=={self.version}"


def parse_requirements(path: Path) -> list[Pin]:
    """Read requirements-lambda.txt: one ``name==version`` a line; anything looser is refused."""
    if not path.is_file():
        raise BuildError(f"requirements file not found: {path}")
    pins: list[Pin] = []
    seen: dict[str, Pin] = {}
    problems: list[str] = []
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = re.sub(r"(^|\s)#.*$", "", raw).strip()
        if not line:
            continue
        where = f"{path.name}:{number}: {raw.strip()!r}"
        if line.startswith("-") or " --" in line:
            problems.append(f"{where}: pip options (-r, -e, --hash, --index-url, ...) are not supported here")
            continue
        match = PIN_RE.match(line)
        if not match:
            problems.append(f"{where}: not a requirement of the form name==version")
            continue
        name, extras, op, version, marker = match.group("name", "extras", "op", "version", "marker")
        if op is None and version:
            problems.append(f"{where}: not a requirement of the form name==version")
            continue
        if op != "==" or not version or "*" in version or not VERSION_RE.match(version):
            problems.append(f"{where}: unpinned requirement; pin an exact version (name==X.Y.Z)")
            continue
        if extras:
            problems.append(
                f"{where}: extras are not installed (dependencies come only from this file, --no-deps); "
                "pin the extra's dependencies instead"
            )
            continue
        if marker:
            problems.append(
                f"{where}: environment markers are not supported (the target is fixed: Lambda python3.12)"
            )
            continue
        pin = Pin(name=name, version=version, line=number)
        if pin.key in NOT_VENDORED:
            problems.append(
                f"{where}: {name} must not be vendored; the Lambda python3.12 runtime provides it"
            )
            continue
        if pin.key in seen:
            problems.append(f"{where}: {name} is already pinned on line {seen[pin.key].line}")
            continue
        seen[pin.key] = pin
        pins.append(pin)
    if problems:
        raise BuildError(f"{path} has problems:\n  " + "\n  ".join(problems))
    return pins


# --------------------------------------------------------------------------- wheels


@dataclasses.dataclass(frozen=True)
class WheelName:
    path: Path
    dist: str
    version: str
    python_tag: str
    abi_tag: str
    platform_tag: str

    @classmethod
    def parse(cls, path: Path) -> WheelName | None:
        if not path.name.endswith(".whl"):
            return None
        parts = path.name[: -len(".whl")].split("-")
        if len(parts) not in (5, 6):
            return None
        return cls(path, parts[0], parts[1], parts[-3], parts[-2], parts[-1])

    def matches(self, pin: Pin) -> bool:
        return normalize_name(self.dist) == pin.key and version_key(self.version) == version_key(pin.version)

    def lambda_problem(self) -> str | None:
        """Why this wheel cannot go into an architecture-neutral python3.12 Lambda zip, or None."""
        platforms = self.platform_tag.split(".")
        if platforms != ["any"]:
            if all(re.match(r"^(many|musl)?linux", p) for p in platforms):
                return (
                    f"it resolves to a platform-specific wheel ({self.path.name}, "
                    f"platform {self.platform_tag}); "
                    "the zips serve both Lambda architectures (x86_64 and arm64), so only pure-Python "
                    "wheels (py3-none-any) can be vendored"
                )
            return (
                f"it resolves to a wheel for the wrong platform ({self.path.name}, platform "
                f"{self.platform_tag}); Lambda runs Linux, and only pure-Python wheels are vendored"
            )
        if self.abi_tag != "none":
            return f"it resolves to an ABI-specific wheel ({self.path.name}, abi {self.abi_tag})"
        if not any(_python_tag_fits(tag) for tag in self.python_tag.split(".")):
            return (
                f"it resolves to a wheel for another Python ({self.path.name}, "
                f"python tag {self.python_tag}); "
                f"the runtime is Python {LAMBDA_PYTHON_VERSION}"
            )
        return None


def _python_tag_fits(tag: str) -> bool:
    major, minor = (int(x) for x in LAMBDA_PYTHON_VERSION.split("."))
    if tag in (f"py{major}", f"cp{major}{minor}"):
        return True
    match = re.fullmatch(rf"py{major}(\d+)", tag)
    return bool(match) and int(match.group(1)) <= minor


def _find_wheel(directory: Path, pin: Pin) -> tuple[WheelName | None, str | None]:
    """The fitting wheel for a pin in a directory, else (None, why the candidates do not fit)."""
    if not directory.is_dir():
        return None, None
    candidates = sorted(
        (w for w in (WheelName.parse(p) for p in directory.iterdir() if p.is_file()) if w and w.matches(pin)),
        key=lambda w: w.path.name,
    )
    for wheel in candidates:
        if wheel.lambda_problem() is None:
            return wheel, None
    if candidates:
        return None, candidates[0].lambda_problem()
    return None, None


def _check_wheel_file(path: Path) -> None:
    try:
        with zipfile.ZipFile(path) as archive:
            archive.infolist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise BuildError(f"{path} is not a readable wheel ({exc}); delete it and build again") from None


def pip_download(pins: Sequence[Pin], dest: Path) -> None:
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--dest",
        str(dest),
        "--no-deps",
        "--only-binary=:all:",
        *(arg for platform in LAMBDA_PLATFORMS for arg in ("--platform", platform)),
        "--implementation",
        "cp",
        "--python-version",
        LAMBDA_PYTHON_VERSION,
        "--disable-pip-version-check",
        "--no-input",
        "--progress-bar",
        "off",
        *(pin.spec for pin in pins),
    ]
    log(f"pip download {' '.join(pin.spec for pin in pins)} (for {', '.join(LAMBDA_PLATFORMS)}, cp312)")
    try:
        result = subprocess.run(command, capture_output=True, text=True, check=False)
    except OSError as exc:
        raise BuildError(f"could not run pip ({sys.executable} -m pip): {exc}") from None
    if result.returncode != 0:
        output = (result.stderr.strip() or result.stdout.strip()).splitlines()
        tail = "\n    ".join(output[-STDERR_TAIL_LINES:]) or "(pip printed nothing)"
        raise BuildError(
            f"pip download failed (exit {result.returncode}) for {', '.join(pin.spec for pin in pins)}.\n"
            f"  command: {' '.join(command)}\n  pip said:\n    {tail}"
        )


def resolve_wheels(pins: Sequence[Pin], cache: Path, offline: bool) -> dict[str, WheelName]:
    """One wheel per pin, from the cache; missing ones are downloaded into it (atomically)."""
    found: dict[str, WheelName] = {}
    missing: list[Pin] = []
    for pin in pins:
        wheel, problem = _find_wheel(cache, pin)
        if problem:
            raise BuildError(f"refusing {pin.spec} (requirements line {pin.line}): {problem}")
        if wheel:
            found[pin.key] = wheel
        else:
            missing.append(pin)
    log(f"wheel cache {display_path(cache)}: {len(found)} of {len(pins)} pinned wheels present")
    if missing and offline:
        raise BuildError(
            "--offline, but the wheel cache lacks "
            + ", ".join(pin.spec for pin in missing)
            + f"; build once without --offline to fill {cache}"
        )
    if missing:
        cache.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".download-", dir=cache) as tmp:
            pip_download(missing, Path(tmp))
            for pin in missing:
                wheel, problem = _find_wheel(Path(tmp), pin)
                if problem:
                    raise BuildError(f"refusing {pin.spec} (requirements line {pin.line}): {problem}")
                if wheel is None:
                    saved = ", ".join(sorted(p.name for p in Path(tmp).iterdir())) or "nothing"
                    raise BuildError(
                        f"pip download succeeded but saved no wheel for {pin.spec} (saved: {saved})"
                    )
                _check_wheel_file(wheel.path)
                target = cache / wheel.path.name
                os.replace(wheel.path, target)  # atomic: concurrent builds never see half a wheel
                found[pin.key] = dataclasses.replace(wheel, path=target)
                log(f"  cached {target.name}")
    return found


@dataclasses.dataclass(frozen=True)
class Vendored:
    pin: Pin
    wheel: str
    sha256: str
    files: dict[str, bytes]  # zip path -> content
    requires: tuple[str, ...]  # Requires-Dist values


def _powertools_trimmed(path: str) -> bool:
    for module in POWERTOOLS_TRIMMED:
        base = module.replace(".", "/")
        if path == base + ".py" or path.startswith(base + "/"):
            return True
    return False


def _wheel_member_target(member: str) -> str | None:
    """Where a wheel member goes in the zip (None: left out)."""
    parts = member.split("/")
    if member.endswith("/") or any(p in ("", ".", "..") for p in parts) or member.startswith("/"):
        return None
    top = parts[0]
    if top.endswith(".data"):
        # purelib/platlib install into site-packages; scripts, headers and data do not belong in a zip.
        if len(parts) < 3 or parts[1] not in ("purelib", "platlib"):
            return None
        parts = parts[2:]
    elif top.endswith(".dist-info"):
        return None if parts[-1] in DIST_INFO_NOISE else member
    if any(p in ("__pycache__", "tests") for p in parts[:-1]) or parts[-1].endswith((".pyc", ".pyo")):
        return None
    path = "/".join(parts)
    return None if _powertools_trimmed(path) else path


def load_wheel(pin: Pin, wheel: WheelName) -> Vendored:
    data = wheel.path.read_bytes()
    files: dict[str, bytes] = {}
    requires: tuple[str, ...] = ()
    try:
        with zipfile.ZipFile(wheel.path) as archive:
            for info in archive.infolist():
                if info.filename.endswith(".dist-info/METADATA") and info.filename.count("/") == 1:
                    metadata = email.parser.BytesParser().parsebytes(archive.read(info), headersonly=True)
                    requires = tuple(metadata.get_all("Requires-Dist") or ())
                target = _wheel_member_target(info.filename)
                if target is not None:
                    if target in files:
                        raise BuildError(f"{wheel.path.name} holds {target} twice")
                    files[target] = archive.read(info)  # reading checks the CRC
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as exc:
        raise BuildError(f"cached wheel {wheel.path} is corrupt ({exc}); delete it and build again") from None
    return Vendored(pin, wheel.path.name, hashlib.sha256(data).hexdigest(), files, requires)


def check_dependencies(vendored: Sequence[Vendored]) -> None:
    """Every unconditional dependency of a vendored wheel must be pinned too (pip runs with --no-deps)."""
    pinned = {v.pin.key for v in vendored}
    problems: list[str] = []
    for item in vendored:
        for requirement in item.requires:
            spec, _, marker = requirement.partition(";")
            if "extra" in marker:
                continue  # an extra we do not install
            match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", spec)
            if not match:
                continue
            dep = normalize_name(match.group(1))
            if dep in pinned or dep in RUNTIME_PROVIDED:
                continue
            if marker.strip():
                log(
                    f"warning: {item.pin.name} needs {requirement.strip()!r} under a marker; it is not pinned"
                )
            else:
                problems.append(f"{item.pin.spec} requires {spec.strip()}, which is not pinned")
    if problems:
        raise BuildError(
            "requirements-lambda.txt is missing dependencies (wheels are installed with --no-deps):\n  "
            + "\n  ".join(problems)
        )


# --------------------------------------------------------------------------- project sources


def _is_junk(relative: Path, is_dir: bool) -> bool:
    name = relative.name
    if name.startswith(".") or name in ("__pycache__",):
        return True
    if is_dir:
        return name in JUNK_DIRS or name.endswith(".egg-info")
    return (
        name.endswith(JUNK_SUFFIXES)
        or name == "conftest.py"
        or (name.endswith(".py") and (name.startswith("test_") or name.endswith("_test.py")))
    )


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


def write_zip(path: Path, entries: dict[str, bytes], date_time: tuple[int, int, int, int, int, int]) -> None:
    """Write entries sorted, with fixed metadata, and without directory entries or extra fields."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        with zipfile.ZipFile(
            tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=COMPRESS_LEVEL
        ) as archive:
            for arcname in sorted(entries):
                info = zipfile.ZipInfo(arcname, date_time=date_time)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.create_system = ZIP_CREATE_SYSTEM_UNIX
                info.external_attr = ZIP_FILE_ATTR
                info.extra = b""
                info.comment = b""
                archive.writestr(info, entries[arcname], compresslevel=COMPRESS_LEVEL)
            archive.comment = b""
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@dataclasses.dataclass(frozen=True)
class ZipFigures:
    name: str
    path: Path
    size: int
    files: int
    unzipped: int
    sha256: str
    sha256_base64: str

    @classmethod
    def of(cls, name: str, path: Path) -> ZipFigures:
        data = path.read_bytes()
        digest = hashlib.sha256(data)
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
        return cls(
            name=name,
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
        }


# --------------------------------------------------------------------------- the build


def build_function(
    name: str,
    *,
    source_root: Path,
    shared: dict[str, Path],
    vendored: Sequence[Vendored],
    out: Path,
    date_time: tuple[int, int, int, int, int, int],
) -> ZipFigures:
    function_dir = source_root / "functions" / name
    if not function_dir.is_dir():
        raise BuildError(f"function {name!r}: directory {function_dir} does not exist")
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
    for item in vendored:
        for arcname, data in item.files.items():
            add(arcname, data, item.wheel)

    unzipped = sum(len(d) for d in entries.values())
    if unzipped > LAMBDA_MAX_UNZIPPED_BYTES:
        raise BuildError(f"function {name!r}: {unzipped} bytes unzipped exceeds Lambda's 250 MB limit")
    target = out / f"{name}.zip"
    write_zip(target, entries, date_time)
    figures = ZipFigures.of(name, target)
    log(
        f"{name}: {len(own)} own + {len(shared)} {SHARED_PACKAGE}/ + "
        f"{sum(len(v.files) for v in vendored)} vendored files -> {display_path(target)}"
    )
    if figures.size > LAMBDA_MAX_ZIP_BYTES:
        log(f"warning: {target.name} is over 50 MB: upload it through S3, not directly")
    return figures


def write_manifest(out: Path, built: Sequence[ZipFigures], vendored: Sequence[Vendored], epoch: int) -> Path:
    """dist/manifest.json: figures of every zip built now, plus still-present zips of earlier builds."""
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
                functions[name] = ZipFigures.of(name, zip_path).manifest_entry()
            except zipfile.BadZipFile:
                continue
    manifest = {
        "functions": dict(sorted(functions.items())),
        "vendored": [
            {"name": v.pin.name, "version": v.pin.version, "wheel": v.wheel, "sha256": v.sha256}
            for v in vendored
        ],
        "zip_timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch)),
        "source_date_epoch": epoch,
        "zlib": zlib.ZLIB_RUNTIME_VERSION,
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
    cache: Path = args.wheel_cache.resolve()
    names: list[str] = list(dict.fromkeys(args.functions or DEFAULT_FUNCTIONS))
    for name in names:
        if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*", name):
            raise BuildError(f"invalid function name {name!r}: a directory name under functions/ is expected")
        if name == SHARED_PACKAGE:
            raise BuildError(f"{SHARED_PACKAGE!r} is the shared package, not a function")

    date_time, epoch = zip_timestamp(os.environ)
    log(
        f"building {', '.join(names)} from {display_path(source_root)} into {display_path(out)} "
        f"(entry time {time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(epoch))} UTC)"
    )

    shared_dir = source_root / "functions" / SHARED_PACKAGE
    if not (shared_dir / "__init__.py").is_file():
        raise BuildError(f"the shared package is missing: {shared_dir / '__init__.py'} does not exist")
    for name in names:  # report a missing function before any download
        if not (source_root / "functions" / name).is_dir():
            raise BuildError(
                f"function {name!r}: directory {source_root / 'functions' / name} does not exist"
            )
    shared = collect_tree(shared_dir, f"{SHARED_PACKAGE}/")
    check_sources(shared, f"the shared package functions/{SHARED_PACKAGE}/ cannot be packaged")

    pins = parse_requirements(requirements)
    log(f"{display_path(requirements)}: {', '.join(p.spec for p in pins) or 'no pins'}")
    wheels = resolve_wheels(pins, cache, offline=args.offline)
    vendored = [load_wheel(pin, wheels[pin.key]) for pin in pins]
    check_dependencies(vendored)
    for item in vendored:
        log(f"  vendoring {item.wheel}: {len(item.files)} files")

    built = [
        build_function(
            name, source_root=source_root, shared=shared, vendored=vendored, out=out, date_time=date_time
        )
        for name in names
    ]
    manifest = write_manifest(out, built, vendored, epoch)
    print_table(built)
    print(f"manifest: {display_path(manifest)}")
    return built


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="build_lambdas.py",
        description=(
            "Build reproducible Lambda zips (default: dist/forwarder.zip, dist/replicator.zip) for the "
            "python3.12 runtime. Each zip holds functions/<name>/ (handler app.handler), the shared "
            "functions/replication/ package as replication/, and the pure-Python wheels pinned in "
            "requirements-lambda.txt (boto3/botocore come from the runtime). Prints a table of "
            "size, sha256 and base64 sha256 (Terraform's filebase64sha256) and writes manifest.json "
            "next to the zips."
        ),
        epilog=(
            "Wheels are downloaded for manylinux2014 x86_64/aarch64, cp312, binary only, without "
            "dependency resolution, and cached in the wheel cache; when every pin is cached pip is not "
            "run at all. Zip entries carry 1980-01-01 00:00:00, or SOURCE_DATE_EPOCH when set. "
            "Exit status: 0 built, 1 build error, 2 usage error."
        ),
    )
    parser.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help="where the zips and manifest.json go (default: SOURCE_ROOT/dist)",
    )
    parser.add_argument(
        "--functions",
        nargs="+",
        metavar="NAME",
        help=f"functions to build, directories under functions/ (default: {' '.join(DEFAULT_FUNCTIONS)})",
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
        "--wheel-cache",
        type=Path,
        default=REPO_ROOT / "build" / "wheels",
        metavar="DIR",
        help="downloaded wheels are kept here (default: build/wheels of this repository)",
    )
    parser.add_argument(
        "--offline",
        action="store_true",
        help="never run pip: fail when a pinned wheel is not in the wheel cache",
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

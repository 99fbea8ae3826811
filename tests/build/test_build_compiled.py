"""A compiled dependency (a cp*-abi3 manylinux wheel, as iam-rolesanywhere-session's cryptography
is) is vendored per Lambda architecture: each architecture's zip holds that architecture's binaries.

Slow the first time (pip downloads about 10 MB of wheels for two platforms into build/lambda/wheels/,
about 35 s); then it builds from the cache without network. Runs with --slow (`make test-slow`).
"""

from __future__ import annotations

import hashlib
import importlib.util
import platform
import shutil
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "build_lambdas.py"
CACHE = REPO / "build" / "lambda"

# cryptography and what it needs on CPython (cffi, which needs pycparser): the dependency the
# forwarder's Roles Anywhere signing will bring.
COMPILED_PINS = "cryptography==50.0.2\ncffi==2.1.1\npycparser==3.12\n"

# ELF e_machine of each Lambda architecture (System V ABI: EM_X86_64 = 62, EM_AARCH64 = 183).
ELF_MACHINE = {"x86_64": 62, "arm64": 183}

_spec = importlib.util.spec_from_file_location("build_lambdas", SCRIPT)
assert _spec and _spec.loader
bl = importlib.util.module_from_spec(_spec)
sys.modules["build_lambdas"] = bl
_spec.loader.exec_module(bl)


@pytest.fixture(scope="module")
def built(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not request.config.getoption("--slow"):
        pytest.skip("downloads compiled wheels the first time: make test-slow (pytest --slow)")
    tmp = tmp_path_factory.mktemp("compiled")
    requirements = tmp / "requirements-lambda.txt"
    requirements.write_text(COMPILED_PINS)
    argv = [
        "--out",
        tmp / "dist",
        "--requirements",
        requirements,
        "--cache",
        CACHE,
        "--functions",
        "forwarder",
    ]
    assert bl.main([str(a) for a in argv]) == 0
    return tmp / "dist"


def elf_machine(data: bytes) -> int:
    assert data[:4] == b"\x7fELF" and data[4] == 2 and data[5] == 1, "a 64-bit little-endian ELF"
    return struct.unpack_from("<H", data, 18)[0]


@pytest.mark.parametrize("architecture", sorted(ELF_MACHINE))
def test_each_architectures_zip_holds_its_own_binaries(built: Path, architecture: str) -> None:
    with zipfile.ZipFile(built / architecture / "forwarder.zip") as archive:
        binaries = {n: elf_machine(archive.read(n)) for n in archive.namelist() if n.endswith(".so")}
        wheel = archive.read("cryptography-50.0.2.dist-info/WHEEL").decode()
    assert "cryptography/hazmat/bindings/_rust.abi3.so" in binaries
    assert any(name.startswith("_cffi_backend.cpython-312-") for name in binaries)
    assert set(binaries.values()) == {ELF_MACHINE[architecture]}, binaries
    platform = {"x86_64": "manylinux2014_x86_64", "arm64": "manylinux2014_aarch64"}[architecture]
    assert f"-abi3-{platform}" in wheel


def test_the_compiled_build_is_reproducible(built: Path, tmp_path: Path) -> None:
    requirements = tmp_path / "requirements-lambda.txt"
    requirements.write_text(COMPILED_PINS)
    argv = ["--out", tmp_path, "--requirements", requirements, "--cache", CACHE, "--functions", "forwarder"]
    assert bl.main([*map(str, argv), "--offline"]) == 0
    for architecture in ELF_MACHINE:
        first, again = (out / architecture / "forwarder.zip" for out in (built, tmp_path))
        assert hashlib.sha256(first.read_bytes()).digest() == hashlib.sha256(again.read_bytes()).digest()


def lambda_python() -> str | None:
    """A Python 3.12 on this machine (the runtime's version: cffi's module is built for it), or None."""
    candidates = [sys.executable] if sys.version_info[:2] == (3, 12) else []
    candidates += [p for p in (shutil.which("python3.12"),) if p]
    for candidate in candidates:
        done = subprocess.run(
            [candidate, "-c", "import sys; print(sys.version_info[:2])"], check=False, **QUIET
        )
        if done.returncode == 0 and done.stdout.strip() == "(3, 12)":
            return candidate
    return None


QUIET = {"capture_output": True, "text": True, "timeout": 120}


def test_the_binary_for_this_machine_loads_and_signs(built: Path, tmp_path: Path) -> None:
    """The zip of this machine's architecture, on the runtime's Python: cryptography's binary loads
    and signs (a wrong platform's would not load)."""
    python = lambda_python()
    if sys.platform != "linux" or platform.machine() not in ("x86_64", "aarch64") or python is None:
        pytest.skip("needs Python 3.12 on a Linux x86_64 or aarch64 machine")
    architecture = "arm64" if platform.machine() == "aarch64" else "x86_64"
    with zipfile.ZipFile(built / architecture / "forwarder.zip") as archive:
        archive.extractall(tmp_path)
    code = (
        "from cryptography.hazmat.primitives import hashes\n"
        "from cryptography.hazmat.primitives.asymmetric import ec\n"
        "key = ec.generate_private_key(ec.SECP256R1())\n"
        "ecdsa = ec.ECDSA(hashes.SHA256())\n"
        "key.public_key().verify(key.sign(b'x', ecdsa), b'x', ecdsa)\n"
        "import cryptography; print(cryptography.__file__)"
    )
    env = {"PYTHONPATH": str(tmp_path), "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run([python, "-S", "-c", code], check=False, env=env, **QUIET)
    assert done.returncode == 0, done.stderr
    assert Path(done.stdout.strip()).is_relative_to(tmp_path)

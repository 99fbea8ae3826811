"""scripts/build_lambdas.py: layout per architecture, reproducibility, zip metadata, importability,
and its errors.

The wheels and installed sets come from the repository's cache (build/lambda/, the one `make package`
fills): the session fixture builds once, downloading only what the cache lacks; every other build
runs with --offline, so the suite never downloads twice. Function code comes from a fixture tree
(--source-root); the real functions/ are built and imported too. A build with a compiled
dependency is in test_build_compiled.py (`make test-slow`).
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer

from tests.table_map import put_table_map

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "build_lambdas.py"
CACHE = REPO / "build" / "lambda"
FUNCTIONS = ("forwarder", "replicator")
ARCHITECTURES = ("x86_64", "arm64")

_spec = importlib.util.spec_from_file_location("build_lambdas", SCRIPT)
assert _spec and _spec.loader
bl = importlib.util.module_from_spec(_spec)
sys.modules["build_lambdas"] = bl
_spec.loader.exec_module(bl)

# Pins of requirements-lambda.txt with compiled wheels, and what needs them.
COMPILED = ("iam-rolesanywhere-session==", "cryptography==", "cffi==", "pycparser==")

# What the Lambda python3.12 runtime puts next to the function code (jmespath left out on purpose:
# the zip must carry its own).
RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer", "dateutil", "urllib3", "six")

# The contract's environment (docs/architecture.md), so a real app.py may read settings on import.
LAMBDA_ENV = {
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_LAMBDA_FUNCTION_NAME": "build-test",
    "TOMBSTONE_TABLE_NAME": "tombstones",
    "LOCAL_REGION": "us-east-1",
    "PEER_REGION": "cn-north-1",
    "PEER_STREAM_NAME": "inbox",
    "PEER_SECRET_ID": "peer-credentials",
    "FAILURE_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/failures",
    "POWERTOOLS_SERVICE_NAME": "build-test",
    "POWERTOOLS_METRICS_NAMESPACE": "DynamoDBReplication",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
}

FAKE_APP = '''\
"""Fixture handler: touches every vendored package and the shared engine."""

import jmespath
import typing_extensions
from aws_lambda_powertools import Logger, Metrics

import replication
from replication.sub import helper

logger = Logger()
metrics = Metrics()


def handler(event, context):
    return {"found": jmespath.search("a.b", event), "engine": replication.NAME, "helper": helper()}
'''


# --------------------------------------------------------------------------- helpers


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def make_tree(root: Path) -> Path:
    """A source tree shaped like the repository, with junk that must stay out of the zips."""
    root.mkdir(parents=True, exist_ok=True)
    # The repository's pure-Python pins: the compiled ones (Roles Anywhere's cryptography) are built
    # per architecture by tests/build/test_build_compiled.py.
    pins = (REPO / "requirements-lambda.txt").read_text(encoding="utf-8").splitlines()
    write(root / "requirements-lambda.txt", "\n".join(p for p in pins if not p.startswith(COMPILED)) + "\n")
    functions = root / "functions"
    write(functions / "replication" / "__init__.py", 'NAME = "engine"\n')
    write(functions / "replication" / "wire.py", "VERSION = 1\n")
    write(functions / "replication" / "sub" / "__init__.py", "def helper():\n    return 'helped'\n")
    write(functions / "replication" / "__pycache__" / "wire.cpython-311.pyc", "junk")
    for name in FUNCTIONS:
        write(functions / name / "app.py", FAKE_APP)
        write(functions / name / "config.json", json.dumps({"name": name}) + "\n")
        write(functions / name / "__pycache__" / "app.cpython-311.pyc", "junk")
        write(functions / name / "tests" / "test_app.py", "def test(): pass\n")
        write(functions / name / "test_local.py", "def test(): pass\n")
        write(functions / name / "conftest.py", "")
        write(functions / name / ".DS_Store", "junk")
        write(functions / name / "app.py~", "junk")
    return root


def run(*args: str | Path) -> int:
    return bl.main([str(a) for a in args])


def build_offline(source: Path, out: Path, *extra: str | Path) -> int:
    return run("--source-root", source, "--out", out, "--cache", CACHE, "--offline", *extra)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def extract(zip_path: Path, dest: Path) -> Path:
    with zipfile.ZipFile(zip_path) as archive:
        archive.extractall(dest)
    return dest


def lambda_python(
    code: str, task_root: Path, runtime: Path, extra_env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run code like the Lambda runtime would: no site-packages, only the zip and the runtime's boto3."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PYTHON", "AWS_", "POWERTOOLS_", "VIRTUAL_ENV"))
    }
    env.update(LAMBDA_ENV, PYTHONDONTWRITEBYTECODE="1")
    env.update(extra_env or {})
    env["PYTHONPATH"] = os.pathsep.join([str(task_root), str(runtime)])
    return subprocess.run(
        [sys.executable, "-S", "-c", code],
        cwd=task_root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def source_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tree(tmp_path_factory.mktemp("source"))


@pytest.fixture(scope="session")
def built(source_tree: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The one build allowed to download (only the wheels build/wheels/ lacks)."""
    out = tmp_path_factory.mktemp("dist")
    rc = run("--source-root", source_tree, "--out", out, "--cache", CACHE)
    assert rc == 0, "the reference build failed; see the captured stderr"
    return out


@pytest.fixture(scope="session")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory standing in for the runtime's own packages (boto3 and friends), linked from the venv."""
    root = tmp_path_factory.mktemp("lambda-runtime")
    for name in RUNTIME_PACKAGES:
        spec = importlib.util.find_spec(name)
        assert spec and spec.origin, f"{name} is not installed in the test environment"
        origin = Path(spec.origin)
        source = origin.parent if origin.name == "__init__.py" else origin
        (root / source.name).symlink_to(source, target_is_directory=source.is_dir())
    return root


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A private copy of the fixture tree a test may break."""
    return make_tree(tmp_path / "src")


@pytest.fixture
def fake_cache(tmp_path: Path) -> Callable[..., Path]:
    """A cache whose wheels/ holds hand-made wheels (file name as given, Requires-Dist lines)."""

    def make(filename: str, *requires: str) -> Path:
        cache = tmp_path / "cache"
        (cache / "wheels").mkdir(parents=True, exist_ok=True)
        dist, version, python, abi, platform = filename.removesuffix(".whl").split("-")
        info = f"{dist}-{version}.dist-info"
        files = {
            f"{dist}/__init__.py": "",
            f"{info}/METADATA": "Metadata-Version: 2.1\n"
            f"Name: {dist}\nVersion: {version}\n" + "".join(f"Requires-Dist: {r}\n" for r in requires),
            f"{info}/WHEEL": f"Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: {python}-{abi}-{platform}\n",
        }
        files[f"{info}/RECORD"] = "".join(f"{name},,\n" for name in (*files, f"{info}/RECORD"))
        with zipfile.ZipFile(cache / "wheels" / filename, "w") as archive:
            for name, text in files.items():
                archive.writestr(name, text)
        return cache

    return make


# --------------------------------------------------------------------------- layout and metadata


@pytest.mark.parametrize("architecture", ARCHITECTURES)
@pytest.mark.parametrize("name", FUNCTIONS)
def test_zip_layout(built: Path, name: str, architecture: str) -> None:
    with zipfile.ZipFile(built / architecture / f"{name}.zip") as archive:
        names = archive.namelist()
    listed = set(names)
    for required in (
        "app.py",
        "config.json",
        "replication/__init__.py",
        "replication/wire.py",
        "replication/sub/__init__.py",
        "aws_lambda_powertools/__init__.py",
        "aws_lambda_powertools/logging/logger.py",
        "aws_lambda_powertools/utilities/batch/__init__.py",
        "aws_lambda_powertools/utilities/data_classes/__init__.py",
        "aws_lambda_powertools-3.37.0.dist-info/METADATA",
        "aws_lambda_powertools-3.37.0.dist-info/licenses/LICENSE",
        "jmespath/__init__.py",
        "jmespath-1.1.0.dist-info/LICENSE",
        "typing_extensions.py",
    ):
        assert required in listed, required
    assert len(names) == len(listed), "duplicate entries"
    for entry in names:
        parts = entry.split("/")
        assert not entry.endswith("/"), f"directory entry {entry}"
        assert parts[0] not in ("boto3", "botocore", "s3transfer"), entry
        assert "__pycache__" not in parts and not entry.endswith((".pyc", ".pyo", "~")), entry
        assert "tests" not in parts and not parts[-1].startswith(("test_", ".")), entry
        assert parts[-1] not in ("conftest.py", "RECORD", "INSTALLER", "REQUESTED", "direct_url.json"), entry
        assert parts[0] != "bin" and ".data" not in parts[0], entry  # jmespath's bin/jp.py script stays out
        assert not entry.startswith("aws_lambda_powertools/event_handler/"), entry
        assert not entry.startswith("aws_lambda_powertools/utilities/parser/"), entry


def test_pure_python_zips_are_the_same_for_both_architectures(built: Path) -> None:
    for name in FUNCTIONS:
        assert sha256(built / "x86_64" / f"{name}.zip") == sha256(built / "arm64" / f"{name}.zip")


@pytest.mark.parametrize("name", FUNCTIONS)
def test_zip_entries_have_fixed_metadata(built: Path, name: str) -> None:
    data = (built / "x86_64" / f"{name}.zip").read_bytes()
    with zipfile.ZipFile(built / "x86_64" / f"{name}.zip") as archive:
        infos = archive.infolist()
        assert archive.comment == b""
    assert [i.filename for i in infos] == sorted(i.filename for i in infos)
    for info in infos:
        assert info.date_time == (1980, 1, 1, 0, 0, 0), info.filename
        assert info.external_attr == 0o644 << 16, info.filename  # repro-zipfile's rw-r--r--
        assert info.create_system == 3, info.filename
        assert info.compress_type == zipfile.ZIP_DEFLATED, info.filename
        assert info.extra == b"" and info.comment == b"", info.filename
        assert not info.flag_bits & 0x08, info.filename  # no data descriptor
        # The local header repeats the name and time; it must carry no extra field either.
        header = struct.unpack("<IHHHHHIIIHH", data[info.header_offset : info.header_offset + 30])
        assert header[0] == 0x04034B50
        assert (header[4], header[5]) == (0, (1 << 5) | 1)  # 00:00:00, 1980-01-01
        assert header[10] == 0, f"{info.filename}: local extra field"


def test_source_date_epoch_sets_the_entry_time(
    source_tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000001")  # 2023-11-14 22:13:21 UTC, odd second
    assert build_offline(source_tree, tmp_path, "--functions", "forwarder") == 0
    for architecture in ARCHITECTURES:
        with zipfile.ZipFile(tmp_path / architecture / "forwarder.zip") as archive:
            assert {i.date_time for i in archive.infolist()} == {(2023, 11, 14, 22, 13, 20)}
        manifest = json.loads((tmp_path / architecture / "manifest.json").read_text())
        assert manifest["zip_timestamp"] == "2023-11-14T22:13:20Z"
    assert os.environ["SOURCE_DATE_EPOCH"] == "1700000001", "the build leaves the environment as it was"

    monkeypatch.setenv("SOURCE_DATE_EPOCH", "0")  # before zip time began: clamped to 1980
    assert build_offline(source_tree, tmp_path / "early", "--functions", "forwarder") == 0
    with zipfile.ZipFile(tmp_path / "early" / "arm64" / "forwarder.zip") as archive:
        assert {i.date_time for i in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}


def test_bad_source_date_epoch_is_refused(
    source_tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "yesterday")
    assert build_offline(source_tree, tmp_path) == 1
    assert "SOURCE_DATE_EPOCH must be an integer" in capsys.readouterr().err


# --------------------------------------------------------------------------- reproducibility


def test_builds_are_byte_identical_across_checkouts_mtimes_and_modes(
    built: Path, source_tree: Path, tmp_path: Path
) -> None:
    first = make_tree(tmp_path / "checkout-a")
    second = shutil.copytree(source_tree, tmp_path / "elsewhere" / "checkout-b")
    for index, path in enumerate(sorted(p for p in second.rglob("*") if p.is_file())):
        os.utime(path, (1_900_000_000 + index, 1_900_000_000 + index))  # touched, all different
        path.chmod(0o600 if index % 2 else 0o755)
    write(second / "functions" / "forwarder" / "__pycache__" / "extra.cpython-312.pyc", "more junk")

    assert build_offline(first, tmp_path / "out-a") == 0
    assert build_offline(second, tmp_path / "out-b") == 0
    for architecture in ARCHITECTURES:
        for name in FUNCTIONS:
            outs = (built, tmp_path / "out-a", tmp_path / "out-b")
            digests = {sha256(out / architecture / f"{name}.zip") for out in outs}
            assert len(digests) == 1, f"{architecture}/{name}.zip differs between builds"
        manifests = {
            (tmp_path / out / architecture / "manifest.json").read_bytes() for out in ("out-a", "out-b")
        }
        assert len(manifests) == 1


def test_rebuild_after_touch_keeps_the_hash(built: Path, source_tree: Path, tmp_path: Path) -> None:
    tree = shutil.copytree(source_tree, tmp_path / "src")
    assert build_offline(tree, tmp_path / "one") == 0
    for path in tree.rglob("*"):
        path.touch()
    assert build_offline(tree, tmp_path / "two") == 0
    for architecture in ARCHITECTURES:
        for name in FUNCTIONS:
            zips = (tmp_path / out / architecture / f"{name}.zip" for out in ("one", "two"))
            assert len({sha256(z) for z in zips}) == 1


def test_content_change_changes_the_hash(built: Path, tree: Path, tmp_path: Path) -> None:
    write(tree / "functions" / "forwarder" / "app.py", FAKE_APP + "# changed\n")
    assert build_offline(tree, tmp_path / "out") == 0
    for architecture in ARCHITECTURES:
        out = tmp_path / "out" / architecture
        assert sha256(out / "forwarder.zip") != sha256(built / architecture / "forwarder.zip")
        assert sha256(out / "replicator.zip") == sha256(built / architecture / "replicator.zip")


# --------------------------------------------------------------------------- the zip runs


@pytest.mark.parametrize("name", FUNCTIONS)
def test_zip_imports_and_runs_in_a_lambda_like_python(
    built: Path, runtime: Path, tmp_path: Path, name: str
) -> None:
    task = extract(built / "x86_64" / f"{name}.zip", tmp_path / "task")
    result = lambda_python(
        "import json, app, aws_lambda_powertools, jmespath, typing_extensions, boto3\n"
        "print(json.dumps({'result': app.handler({'a': {'b': 7}}, None),"
        " 'modules': [m.__file__ for m in (aws_lambda_powertools, jmespath, typing_extensions, boto3)]}))",
        task,
        runtime,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["result"] == {"found": 7, "engine": "engine", "helper": "helped"}
    powertools, jmespath_file, typing_file, boto3_file = (Path(p) for p in report["modules"])
    for vendored in (powertools, jmespath_file, typing_file):
        assert vendored.is_relative_to(task), vendored
    assert boto3_file.is_relative_to(runtime), boto3_file


def test_every_vendored_powertools_module_imports(built: Path, runtime: Path, tmp_path: Path) -> None:
    """Trimming Powertools must not break anything left in the zip."""
    task = extract(built / "x86_64" / "forwarder.zip", tmp_path / "task")
    result = lambda_python(
        "import importlib, pkgutil, aws_lambda_powertools\n"
        "prefix = 'aws_lambda_powertools.'\n"
        "names = [m.name for m in pkgutil.walk_packages(aws_lambda_powertools.__path__, prefix)]\n"
        "failed = []\n"
        "for name in names:\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except Exception as exc:\n"
        "        failed.append(f'{name}: {exc!r}')\n"
        "print(len(names)); print('\\n'.join(failed))",
        task,
        runtime,
    )
    assert result.returncode == 0, result.stderr
    count, *failed = result.stdout.strip().splitlines()
    assert int(count) > 100
    assert failed == []


@pytest.fixture(scope="module")
def table_map() -> Iterator[dict[str, str]]:
    """A moto server holding a one-table map as the module deploys it (the functions read it on import,
    docs/architecture.md, Lambda contract); the variables that let a function find it there."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        ssm = boto3.client(
            "ssm",
            region_name=LAMBDA_ENV["AWS_REGION"],
            endpoint_url=endpoint,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        entry = {
            "table_name": "table",
            "table_arn": "arn:aws:dynamodb:us-east-1:123456789012:table/table",
            "peer_table_name": "table",
            "replicate_ttl_deletes": False,
            "key_schema": [{"AttributeName": "pk", "KeyType": "HASH", "AttributeType": "S"}],
        }
        yield {**put_table_map(ssm, {"table": entry}), "AWS_ENDPOINT_URL": endpoint}
    finally:
        server.stop()


@pytest.mark.parametrize("name", FUNCTIONS)
def test_real_function_zip_imports(
    name: str, runtime: Path, tmp_path: Path, table_map: dict[str, str]
) -> None:
    """The repository's own functions, whose import reads the table map from Parameter Store."""
    out = tmp_path / "dist"
    assert run("--out", out, "--cache", CACHE, "--functions", name, "--architectures", "x86_64") == 0
    task = extract(out / "x86_64" / f"{name}.zip", tmp_path / "task")
    assert (task / "replication" / "__init__.py").is_file()
    code = "import app; assert callable(app.handler), 'app.handler'; print(sorted(app.settings.tables))"
    result = lambda_python(code, task, runtime, table_map)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "['table']"


# --------------------------------------------------------------------------- output


def test_manifest_and_table_report_the_zips(
    source_tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert build_offline(source_tree, tmp_path) == 0
    captured = capsys.readouterr()
    for architecture in ARCHITECTURES:
        manifest = json.loads((tmp_path / architecture / "manifest.json").read_text())
        assert manifest["architecture"] == architecture
        assert sorted(manifest["functions"]) == sorted(FUNCTIONS)
        for name, entry in manifest["functions"].items():
            data = (tmp_path / architecture / f"{name}.zip").read_bytes()
            digest = hashlib.sha256(data).digest()
            assert entry["zip"] == f"{name}.zip"
            assert entry["bytes"] == len(data)
            assert entry["kib"] == round(len(data) / 1024, 1)
            assert entry["sha256"] == digest.hex()
            assert entry["sha256_base64"] == base64.b64encode(digest).decode()  # filebase64sha256
            assert entry["handler"] == "app.handler" and entry["runtime"] == "python3.12"
            assert entry["architecture"] == architecture
            assert digest.hex() in captured.out and entry["sha256_base64"] in captured.out
            assert f"{len(data) / 1024:.1f}" in captured.out
        vendored = manifest["vendored"]
        assert [v["name"].replace("_", "-") for v in vendored] == [
            "aws-lambda-powertools",
            "jmespath",
            "typing-extensions",
        ]
        for item in vendored:
            wheel = CACHE / "wheels" / item["wheel"]
            assert item["wheel"].startswith(f"{item['name']}-{item['version']}-")
            assert item["sha256"] == sha256(wheel)
        assert f"{architecture}/forwarder.zip" in captured.out
    assert "vendored files" in captured.err  # progress lines


def test_functions_option_builds_only_those_and_keeps_other_manifest_entries(
    built: Path, source_tree: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    assert build_offline(source_tree, out) == 0
    (out / "x86_64" / "forwarder.zip").unlink()
    assert build_offline(source_tree, out, "--functions", "forwarder") == 0
    manifest = json.loads((out / "x86_64" / "manifest.json").read_text())
    assert manifest["functions"]["replicator"]["sha256"] == sha256(built / "x86_64" / "replicator.zip")
    assert manifest["functions"]["forwarder"]["sha256"] == sha256(built / "x86_64" / "forwarder.zip")

    only = tmp_path / "only"
    assert build_offline(source_tree, only, "--functions", "replicator", "--architectures", "arm64") == 0
    assert sorted(p.relative_to(only).as_posix() for p in only.rglob("*")) == [
        "arm64",
        "arm64/manifest.json",
        "arm64/replicator.zip",
    ]


def test_help_runs_as_a_program() -> None:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--help"], capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 0
    for option in ("--out", "--functions", "--architectures", "--source-root", "--cache", "--offline"):
        assert option in result.stdout
    assert "SOURCE_DATE_EPOCH" in result.stdout


# --------------------------------------------------------------------------- offline


def test_a_build_whose_pins_are_installed_runs_no_pip(
    built: Path, source_tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_pip(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"pip ran: {args}")

    monkeypatch.setattr(bl.subprocess, "run", no_pip)
    assert run("--source-root", source_tree, "--out", tmp_path, "--cache", CACHE) == 0
    assert sha256(tmp_path / "arm64" / "forwarder.zip") == sha256(built / "arm64" / "forwarder.zip")


def test_a_build_from_cached_wheels_needs_no_network(
    built: Path, source_tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fresh installed set, made from the wheel cache alone: an index that cannot be reached and
    --offline (never download) still build, and the same bytes."""
    shutil.copytree(CACHE / "wheels", tmp_path / "cache" / "wheels")
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")  # discard port: nothing answers
    monkeypatch.setenv("PIP_FIND_LINKS", "")
    monkeypatch.setenv("PIP_EXTRA_INDEX_URL", "")
    assert (
        run(
            "--source-root",
            source_tree,
            "--out",
            tmp_path / "out",
            "--cache",
            tmp_path / "cache",
            "--offline",
        )
        == 0
    )
    for architecture in ARCHITECTURES:
        for name in FUNCTIONS:
            assert sha256(tmp_path / "out" / architecture / f"{name}.zip") == sha256(
                built / architecture / f"{name}.zip"
            )


def test_the_install_takes_wheels_from_the_cache_only(
    tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_cache: Callable[..., Path]
) -> None:
    """Not from pip's find-links or index settings (environment or configuration file): what the
    cache holds is what the manifest records."""
    elsewhere = fake_cache("nativepkg-1.0-py3-none-any.whl") / "wheels"
    config = write(tmp_path / "pip.conf", f"[global]\nfind-links = {elsewhere}\n")
    monkeypatch.setenv("PIP_FIND_LINKS", str(elsewhere))
    monkeypatch.setenv("PIP_CONFIG_FILE", str(config))
    write(tree / "requirements-lambda.txt", "nativepkg==1.0\n")
    empty = tmp_path / "empty"
    assert run("--source-root", tree, "--out", tmp_path / "out", "--cache", empty, "--offline") == 1


def test_offline_build_with_an_empty_cache_says_what_pip_missed(
    tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty"
    assert run("--source-root", tree, "--out", tmp_path / "out", "--cache", empty, "--offline") == 1
    err = capsys.readouterr().err
    assert "--offline, but the wheel cache" in err and "cannot serve x86_64" in err
    assert "aws-lambda-powertools==3.37.0" in err.split("pip said:")[-1]  # pip's own words
    assert not any((empty / "site-packages").iterdir()), "no half-installed set may be kept"
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------- errors


def test_missing_function_dir(tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert build_offline(tree, tmp_path / "out", "--functions", "forwarder", "nosuch") == 1
    err = capsys.readouterr().err
    assert "function 'nosuch'" in err and "does not exist" in err
    assert not (tmp_path / "out").exists()


def test_missing_app_py(tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tree / "functions" / "replicator" / "app.py").unlink()
    assert build_offline(tree, tmp_path / "out") == 1
    err = capsys.readouterr().err
    assert "replicator" in err and "app.py does not exist" in err


def test_app_without_handler(tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(tree / "functions" / "forwarder" / "app.py", "def main(event, context):\n    return None\n")
    assert build_offline(tree, tmp_path / "out") == 1
    assert "defines no top-level 'handler'" in capsys.readouterr().err


def test_missing_shared_package(tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shutil.rmtree(tree / "functions" / "replication")
    assert build_offline(tree, tmp_path / "out") == 1
    assert "shared package is missing" in capsys.readouterr().err


def test_syntax_error_is_reported_with_its_place(
    tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tree / "functions" / "replication" / "wire.py", "x = (\n")
    assert build_offline(tree, tmp_path / "out") == 1
    assert "wire.py:1: syntax error" in capsys.readouterr().err


def test_path_clash_between_function_and_shared_package(
    tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tree / "functions" / "forwarder" / "replication" / "__init__.py", "")
    assert build_offline(tree, tmp_path / "out") == 1
    assert "zip path replication/__init__.py comes from both" in capsys.readouterr().err


@pytest.mark.parametrize(
    "module",
    ["aws_lambda_powertools.event_handler", "aws_lambda_powertools.utilities.parser.models"],
)
def test_importing_a_trimmed_powertools_module_is_refused(
    tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], module: str
) -> None:
    parent, _, leaf = module.rpartition(".")
    write(tree / "functions" / "replication" / "wire.py", f"from {parent} import {leaf}\n")
    assert build_offline(tree, tmp_path / "out") == 1
    err = capsys.readouterr().err
    assert "wire.py:1: imports" in err and "POWERTOOLS_TRIMMED" in err


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("jmespath>=1.0", "unpinned requirement"),
        ("jmespath", "unpinned requirement"),
        ("jmespath==1.*", "unpinned requirement"),
        ("jmespath~=1.1", "unpinned requirement"),
        ("jmespath==1.1.0,!=1.0", "unpinned requirement"),
        ("boto3==1.44.8", "must not be vendored"),
        ("BotoCore==1.44.8", "must not be vendored"),
        ("aws-lambda-powertools[tracer]==3.37.0", "extras are not installed"),
        ('jmespath==1.1.0; python_version >= "3.12"', "environment markers are not supported"),
        ("-r other.txt", "pip options"),
        ("jmespath==1.1.0 --hash=sha256:00", "pip options"),
        ("https://example.com/x.whl", "not a requirement"),
        ("jmespath @ https://example.com/jmespath.whl", "not a requirement"),
    ],
)
def test_loose_requirements_are_refused(
    tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], line: str, message: str
) -> None:
    write(tree / "requirements-lambda.txt", f"# comment\n{line}\n")
    assert run("--source-root", tree, "--out", tmp_path / "out", "--cache", tmp_path / "empty") == 1
    err = capsys.readouterr().err
    assert message in err and "requirements-lambda.txt:2" in err
    assert not (tmp_path / "empty").exists(), "pip must not run for a refused file"


def test_duplicate_pin_is_refused(tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(tree / "requirements-lambda.txt", "jmespath==1.1.0\nJMESPath==1.1.0\n")  # PEP 503: one name
    assert build_offline(tree, tmp_path / "out") == 1
    assert "already pinned on line 1" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("wheel", "refused"),
    [
        ("nativepkg-1.0-cp312-cp312-macosx_11_0_arm64.whl", "x86_64"),  # not Linux
        ("nativepkg-1.0-cp311-cp311-manylinux2014_x86_64.whl", "x86_64"),  # another Python's ABI
        ("nativepkg-1.0-py2-none-any.whl", "x86_64"),  # Python 2 only
        ("nativepkg-1.0-cp312-cp312-manylinux2014_x86_64.whl", "arm64"),  # x86_64 only
    ],
)
def test_a_wheel_that_does_not_fit_an_architecture_is_refused_for_it(
    *,
    tree: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    fake_cache: Callable[..., Path],
    wheel: str,
    refused: str,
) -> None:
    cache = fake_cache(wheel)
    write(tree / "requirements-lambda.txt", "nativepkg==1.0\n")
    assert run("--source-root", tree, "--out", tmp_path / "out", "--cache", cache, "--offline") == 1
    err = capsys.readouterr().err
    assert f"cannot serve {refused}" in err and "nativepkg==1.0" in err.split("pip said:")[-1]
    assert not (tmp_path / "out" / refused).exists()


def test_a_wheel_for_one_architecture_each_goes_into_that_architectures_zip(
    tree: Path, tmp_path: Path, fake_cache: Callable[..., Path]
) -> None:
    fake_cache("nativepkg-1.0-cp312-cp312-manylinux2014_x86_64.whl")
    cache = fake_cache("nativepkg-1.0-cp312-abi3-manylinux2014_aarch64.whl")
    write(tree / "requirements-lambda.txt", "nativepkg==1.0.0\n")  # PEP 440: 1.0.0 == 1.0
    assert run("--source-root", tree, "--out", tmp_path / "out", "--cache", cache, "--offline") == 0
    for architecture, tag in (
        ("x86_64", "cp312-cp312-manylinux2014_x86_64"),
        ("arm64", "cp312-abi3-manylinux2014_aarch64"),
    ):
        with zipfile.ZipFile(tmp_path / "out" / architecture / "forwarder.zip") as archive:
            assert f"Tag: {tag}" in archive.read("nativepkg-1.0.dist-info/WHEEL").decode()


def test_unpinned_dependency_of_a_vendored_distribution_is_refused(
    tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write(tree / "requirements-lambda.txt", "aws-lambda-powertools==3.37.0\n")  # jmespath: runtime has it
    assert build_offline(tree, tmp_path / "out") == 1
    err = capsys.readouterr().err
    assert "aws_lambda_powertools==3.37.0 requires typing-extensions" in err and "which is not pinned" in err
    assert "jmespath" not in err.split("missing dependencies")[-1]


def test_a_pin_outside_what_a_dependency_accepts_is_refused(
    tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], fake_cache: Callable[..., Path]
) -> None:
    fake_cache("needy-1.0-py3-none-any.whl", "helper>=2")
    cache = fake_cache("helper-1.5-py3-none-any.whl")
    write(tree / "requirements-lambda.txt", "needy==1.0\nhelper==1.5\n")
    assert run("--source-root", tree, "--out", tmp_path / "out", "--cache", cache, "--offline") == 1
    assert "needy==1.0 requires helper>=2, but helper==1.5 is pinned" in capsys.readouterr().err


def test_dependency_markers_are_evaluated_for_each_lambda_architecture(
    tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], fake_cache: Callable[..., Path]
) -> None:
    """Not for this machine: an arm64-only dependency is needed in the arm64 zip alone, and an
    extra's or another Python's dependency in neither."""
    cache = fake_cache(
        "needy-1.0-py3-none-any.whl",
        'armhelper; platform_machine == "aarch64"',
        'extrahelper; extra == "more"',
        'oldhelper; python_version < "3.12"',
        'winhelper; sys_platform == "win32"',
    )
    write(tree / "requirements-lambda.txt", "needy==1.0\n")
    assert run("--source-root", tree, "--out", tmp_path / "out", "--cache", cache, "--offline") == 1
    err = capsys.readouterr().err
    assert (tmp_path / "out" / "x86_64" / "forwarder.zip").is_file()
    assert "needy==1.0 requires armhelper" in err
    assert not any(name in err for name in ("extrahelper", "oldhelper", "winhelper"))


def test_corrupt_cached_wheel_is_reported(
    tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "cache" / "wheels").mkdir(parents=True)
    (tmp_path / "cache" / "wheels" / "brokenpkg-1.0-py3-none-any.whl").write_bytes(b"not a zip")
    write(tree / "requirements-lambda.txt", "brokenpkg==1.0\n")
    assert (
        run("--source-root", tree, "--out", tmp_path / "out", "--cache", tmp_path / "cache", "--offline") == 1
    )
    err = capsys.readouterr().err
    assert "cannot serve x86_64" in err and "brokenpkg" in err.split("pip said:")[-1]


def test_pip_failure_shows_what_pip_said(
    tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # No index and an empty find-links: pip fails at once, without the network.
    links = tmp_path / "links"
    links.mkdir()
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(links))
    write(tree / "requirements-lambda.txt", "no-such-package-for-build-test==1.0.0\n")
    cache = tmp_path / "cache"
    assert run("--source-root", tree, "--out", tmp_path / "out", "--cache", cache) == 1
    err = capsys.readouterr().err
    assert "pip download failed for x86_64" in err
    assert "no-such-package-for-build-test" in err.split("pip said:")[-1]  # pip's own words
    assert not list(cache.rglob("*.whl")) and not any((cache / "site-packages").iterdir())


# --------------------------------------------------------------------------- the module's side


def test_the_modules_default_zip_paths_are_the_builders_for_each_lambda_architecture(built: Path) -> None:
    """modules/replication_endpoint picks dist/${var.lambda_architecture}/NAME.zip; every architecture
    its variable allows is one the builder writes, under the same name Lambda uses."""
    module = REPO / "modules" / "replication_endpoint"
    locals_text = (module / "lambda.tf").read_text()
    allowed = re.search(
        r"contains\(\[([^\]]*)\],\s*var\.lambda_architecture\)", (module / "variables.tf").read_text()
    )
    assert allowed, "lambda_architecture's validation lists the allowed values"
    architectures = re.findall(r'"([^"]+)"', allowed.group(1))
    assert sorted(architectures) == sorted(bl.ARCHITECTURES) == sorted(ARCHITECTURES)
    for name in FUNCTIONS:
        path = f"${{path.module}}/../../dist/${{var.lambda_architecture}}/{name}.zip"
        default = f'coalesce(var.{name}_zip_path, "{path}")'
        assert default in locals_text
        for architecture in architectures:
            assert (built / architecture / f"{name}.zip").is_file()

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_powertools.utilities import parameters
from moto import mock_aws

from replication_ops import cli
from replication_ops.local.config import PROFILES, Paths
from replication_ops.local.environment import EnvironmentOptions, LocalEnvironment

from .fakes import FakeSide


@dataclass
class Deployment:
    cn: FakeSide
    us: FakeSide
    cn_outputs: Path
    us_outputs: Path

    def args(self) -> list[str]:
        return ["--cn-outputs", str(self.cn_outputs), "--us-outputs", str(self.us_outputs), "--quiet"]

    def side(self, label: str) -> FakeSide:
        return self.cn if label == "cn" else self.us

    def rewrite_outputs(self) -> None:
        self.cn.write_outputs(self.cn_outputs.parent)
        self.us.write_outputs(self.us_outputs.parent)


@pytest.fixture(autouse=True)
def _clear_secret_cache() -> Iterator[None]:
    parameters.clear_caches()
    yield
    parameters.clear_caches()


@pytest.fixture
def deployment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Deployment]:
    monkeypatch.chdir(tmp_path)  # checkpoints land in the test's folder
    with mock_aws():
        cn, us = FakeSide("cn", "us"), FakeSide("us", "cn")
        cn.create()
        us.create()
        yield Deployment(cn, us, cn.write_outputs(tmp_path), us.write_outputs(tmp_path))


@dataclass
class Run:
    code: int
    out: str
    err: str

    @property
    def json(self) -> Any:
        return json.loads(self.out)


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]) -> Callable[..., Run]:
    def invoke(*argv: str) -> Run:
        capsys.readouterr()
        try:
            code = cli.main(list(argv))
        except SystemExit as refused:  # argparse refused the arguments
            code = int(refused.code or 0)
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    return invoke


@pytest.fixture(scope="package")
def local_pair(
    tmp_path_factory: pytest.TempPathFactory, lambda_zips: Path
) -> Iterator[tuple[LocalEnvironment, Path]]:
    """The local two-partition environment (both roots applied, the real zips running), started once
    for every end-to-end test of this folder (the operations CLI's and the README's): (the
    environment, its environment.json)."""
    paths = Paths(tmp_path_factory.mktemp("ops-e2e") / "local")
    # One table, the README's example table without residency rules: these tests write items of
    # their own and compare whole tables.
    tables = (replace(PROFILES, cn_residency=None),)
    env = LocalEnvironment(EnvironmentOptions(paths=paths, inbox_shards=1, tables=tables), say=lambda _: None)
    try:
        env.start()
        yield env, env.write_environment_json()
    finally:
        env.stop()

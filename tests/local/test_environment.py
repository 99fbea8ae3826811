"""Starting the local environment: a failed Terraform apply starts over from fresh partitions once."""

from __future__ import annotations

from pathlib import Path

import pytest

from replication_ops.local.config import Paths
from replication_ops.local.environment import EnvironmentOptions, LocalEnvironment
from replication_ops.local.terraform import TerraformError


class Recorded(LocalEnvironment):
    """The environment with its partitions and applies replaced by a record of the calls."""

    def __init__(self, tmp_path: Path, failing_applies: int) -> None:
        self.said: list[str] = []
        super().__init__(EnvironmentOptions(paths=Paths(tmp_path)), say=self.said.append)
        self.calls: list[str] = []
        self.failing_applies = failing_applies

    def _start_partitions(self) -> None:
        self.calls.append("start partitions")

    def _stop_partitions(self) -> None:
        self.calls.append("stop partitions")

    def _apply(self) -> None:
        self.calls.append("apply")
        if self.calls.count("apply") <= self.failing_applies:
            raise TerraformError("terraform apply failed for cn-north-1 (exit 1); last lines: ...")


def test_a_failed_apply_starts_over_from_fresh_partitions(tmp_path: Path) -> None:
    environment = Recorded(tmp_path, failing_applies=1)
    environment._apply_or_start_over()
    assert environment.calls == ["apply", "stop partitions", "start partitions", "apply"]
    assert any("starting over once" in line for line in environment.said)


def test_an_apply_that_fails_again_reports_its_error(tmp_path: Path) -> None:
    environment = Recorded(tmp_path, failing_applies=5)
    with pytest.raises(TerraformError, match="apply failed for cn-north-1"):
        environment._apply_or_start_over()
    assert environment.calls.count("apply") == 2

"""CPU benchmark of one local partition (the moto launcher as ``make demo`` runs it, IAM enforced):
CPU seconds per request in the partition's process and in the calling client, for the request mix
the local pipeline makes most (a write, a stream read that returns its record, an empty stream read
as Lambda's pollers and the demo's watcher make between writes).

Not the engine's cost: the scaffolding's, so that a change to the local environment (its HTTP
server, moto patches, IAM enforcement) is measured by the same yardstick. CPU, not wall time, so a
busy machine inflates the figures less; the load average is written beside them.

Writes ``--out`` (build/bench_local_partition.json) and prints it. Figures, not assertions.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import tempfile
import time
from pathlib import Path

from replication_ops.local.aws import SideClients
from replication_ops.local.config import SIDES
from replication_ops.local.partitions import LocalPartition


def process_cpu_seconds(pid: int) -> float:
    """utime + stime of a process (/proc/<pid>/stat fields 14 and 15, in clock ticks)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run(rounds: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as logs:
        partition = LocalPartition(SIDES["cn-north-1"], Path(logs) / "moto.log", enforce_iam=True)
        partition.start()
        try:
            clients = SideClients(partition.endpoint_url, "cn-north-1")
            clients.dynamodb.create_table(
                TableName="bench",
                KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                BillingMode="PAY_PER_REQUEST",
                StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
            )
            stream_arn = clients.dynamodb.describe_table(TableName="bench")["Table"]["LatestStreamArn"]
            streams = clients.dynamodbstreams
            shard = streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"][0]
            iterator = streams.get_shard_iterator(
                StreamArn=stream_arn, ShardId=shard["ShardId"], ShardIteratorType="LATEST"
            )["ShardIterator"]
            assert partition.process is not None
            pid = partition.process.pid
            server, client, wall = process_cpu_seconds(pid), own_cpu_seconds(), time.time()
            for number in range(rounds):
                item = {"pk": {"S": f"k{number % 200}"}, "v": {"N": str(number)}, "name": {"S": "x" * 50}}
                clients.dynamodb.put_item(TableName="bench", Item=item)
                for _ in range(2):  # the record, then an empty read
                    iterator = streams.get_records(ShardIterator=iterator)["NextShardIterator"]
            requests = 3 * rounds
            partition_cpu = process_cpu_seconds(pid) - server
            return {
                "requests": requests,
                "partition_cpu_ms_per_request": round(1000 * partition_cpu / requests, 3),
                "client_cpu_ms_per_request": round(1000 * (own_cpu_seconds() - client) / requests, 3),
                "wall_ms_per_request": round(1000 * (time.time() - wall) / requests, 3),
                "load_average_1m": round(os.getloadavg()[0], 2),
            }
        finally:
            partition.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=600, help="write + two stream reads, this many times")
    parser.add_argument("--out", type=Path, default=Path("build/bench_local_partition.json"))
    args = parser.parse_args()
    figures = run(args.rounds)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()

"""Operations for the replication pair: the `ddb-replication` CLI and the local environment."""

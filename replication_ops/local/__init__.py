"""The local two-partition environment: `make demo`, `make up`, `make down`.

Two moto servers on loopback stand in for the `aws-cn` and `aws` partitions; both Terraform roots are
applied to them, the Lambda zips run in worker processes fed by an event-source runner that behaves
like Lambda's stream pollers, and a load generator writes to both tables at once.
"""

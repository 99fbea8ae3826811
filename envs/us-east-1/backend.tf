# State backend. Local state by default; for a team, uncomment and fill in an S3 bucket of THIS
# partition (a bucket in the other partition cannot be reached with these credentials), or keep the
# block empty (`backend "s3" {}`) and pass the values with `terraform init -backend-config=backend.hcl`.
#
# terraform {
#   backend "s3" {
#     bucket       = "my-terraform-state-us-east-1"
#     key          = "ddb-replication/us-east-1/terraform.tfstate"
#     region       = "us-east-1"
#     encrypt      = true
#     use_lockfile = true
#   }
# }

# Credentials come from the standard chain (environment, profile, instance role). A custom endpoint
# (a test server) comes from the standard AWS_ENDPOINT_URL environment variable: nothing to change here.
provider "aws" {
  region = var.region

  default_tags {
    tags = var.tags
  }
}

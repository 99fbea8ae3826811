terraform {
  required_version = ">= 1.7"

  # A range, not a lock file: `.terraform.lock.hcl` is not committed (a lock made from one machine's
  # provider mirror holds that platform's hashes only). Teams that want a lock run, once, with network:
  #   terraform providers lock -platform=linux_amd64 -platform=linux_arm64 -platform=darwin_arm64 -platform=windows_amd64
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.60, < 7"
    }
  }
}

terraform {
  # 1.7 brings mock providers for `terraform test`; 1.11 brings `override_during`, used by the tests only.
  required_version = ">= 1.7"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.60, < 7"
    }
  }
}

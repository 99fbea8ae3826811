terraform {
  required_providers {
    aws = { source = "hashicorp/aws", version = "5.100.0" }
  }
}
# The Roles Anywhere resources of the peer writer, as the module makes them, applied by hashicorp/aws
# 5.100.0 against a local partition's emulation (tests/local/test_rolesanywhere_terraform.py).
variable "ca" { type = string }
variable "enabled" { type = bool }
variable "duration_seconds" { type = number }
variable "tags" { type = map(string) }
provider "aws" {
  region                      = "cn-north-1"
  skip_credentials_validation = true
  skip_requesting_account_id  = true
  skip_metadata_api_check     = true
  skip_region_validation      = true
}
resource "aws_rolesanywhere_trust_anchor" "pair" {
  name    = "pair"
  enabled = var.enabled
  source {
    source_type = "CERTIFICATE_BUNDLE"
    source_data { x509_certificate_data = var.ca }
  }
  tags = var.tags
}
resource "aws_iam_role" "writer" {
  name = "peer-writer"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "rolesanywhere.amazonaws.com" }
      Action    = ["sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity"]
      Condition = {
        ArnEquals    = { "aws:SourceArn" = aws_rolesanywhere_trust_anchor.pair.arn }
        StringEquals = { "aws:PrincipalTag/x509Subject/CN" = "pair.forwarder.us-east-1" }
      }
    }]
  })
}
resource "aws_rolesanywhere_profile" "pair" {
  name             = "pair"
  enabled          = var.enabled
  duration_seconds = var.duration_seconds
  role_arns        = [aws_iam_role.writer.arn]
  tags             = var.tags
}
output "anchor" { value = aws_rolesanywhere_trust_anchor.pair.arn }
output "profile" { value = aws_rolesanywhere_profile.pair.arn }

# Mock data shared by the module's us-east-1 plan tests (mock_provider's `source`, Terraform >= 1.7).
mock_data "aws_partition" {
  defaults = { partition = "aws", dns_suffix = "amazonaws.com" }
}
mock_data "aws_region" {
  defaults = { name = "us-east-1" }
}
mock_data "aws_caller_identity" {
  defaults = { account_id = "111122223333" }
}
mock_data "aws_availability_zones" {
  defaults = { names = ["us-east-1a", "us-east-1b", "us-east-1c"] }
}
mock_data "aws_service_principal" {
  defaults = { name = "lambda.amazonaws.com" }
}
mock_data "aws_vpc_endpoint_service" {
  defaults = { service_name = "com.amazonaws.us-east-1.dynamodb" }
}
mock_resource "aws_kms_key" {
  defaults = { arn = "arn:aws:kms:us-east-1:111122223333:key/11111111-2222-3333-4444-555555555555" }
}
mock_resource "aws_secretsmanager_secret" {
  defaults = { arn = "arn:aws:secretsmanager:us-east-1:111122223333:secret:ddbrep/peer-credentials-AbCdEf" }
}
mock_resource "aws_sqs_queue" {
  defaults = {
    arn = "arn:aws:sqs:us-east-1:111122223333:ddbrep-failures"
    url = "https://sqs.us-east-1.amazonaws.com/111122223333/ddbrep-failures"
  }
}
mock_resource "aws_kinesis_stream" {
  defaults = { arn = "arn:aws:kinesis:us-east-1:111122223333:stream/ddbrep-inbox" }
}
mock_resource "aws_dynamodb_table" {
  defaults = { stream_arn = "arn:aws:dynamodb:us-east-1:111122223333:table/ddbrep-table/stream/2026-01-01T00:00:00.000" }
}
mock_resource "aws_sns_topic" {
  defaults = { arn = "arn:aws:sns:us-east-1:111122223333:ddbrep-replication-alarms" }
}
mock_resource "aws_lambda_function" {
  defaults = { arn = "arn:aws:lambda:us-east-1:111122223333:function:mock" }
}
mock_resource "aws_subnet" {
  defaults = { id = "subnet-0123456789abcdef0" }
}
mock_resource "aws_security_group" {
  defaults = { id = "sg-0123456789abcdef0" }
}
mock_resource "aws_kinesis_stream_consumer" {
  # RegisterStreamConsumer's ARN: the stream's, /consumer/<name>:<creation timestamp>.
  defaults = { arn = "arn:aws:kinesis:us-east-1:111122223333:stream/ddbrep-inbox/consumer/ddbrep-replicator:1767225600" }
}

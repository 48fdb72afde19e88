# terraform test with a mocked AWS provider (no account, no network): the plan's shape and
# the variables' refusals. The apply against a fake AWS API (moto) is
# tests/integration/test_terraform.py.

mock_provider "aws" {
  mock_data "aws_iam_policy_document" {
    defaults = { json = "{\"Version\":\"2012-10-17\",\"Statement\":[]}" }
  }
  mock_data "aws_caller_identity" {
    defaults = { account_id = "123456789012" }
  }
}

variables {
  zone               = "public-a"
  availability_zones = ["eu-west-1a", "eu-west-1b"]
  ray_workers        = { min_size = 3, max_size = 8 }
}

run "plan_shape" {
  command = plan

  assert {
    condition     = length(aws_subnet.private) == 2
    error_message = "one private subnet per availability zone"
  }
  assert {
    condition     = aws_eks_node_group.this["ray-workers"].scaling_config[0].min_size == 3 && aws_eks_node_group.this["ray-workers"].scaling_config[0].max_size == 8
    error_message = "the Ray worker bounds come from the variables (the topology)"
  }
  assert {
    condition     = aws_eks_cluster.this.vpc_config[0].endpoint_public_access == false
    error_message = "the cluster API is not on the internet"
  }
  assert {
    condition     = alltrue([for b in aws_s3_bucket_public_access_block.this : b.block_public_acls && b.restrict_public_buckets])
    error_message = "no bucket may be public"
  }
}

run "one_availability_zone_is_refused" {
  command = plan
  variables {
    availability_zones = ["eu-west-1a"]
  }
  expect_failures = [var.availability_zones]
}

run "worker_bounds_upside_down_are_refused" {
  command = plan
  variables {
    ray_workers = { min_size = 9, max_size = 3 }
  }
  expect_failures = [var.ray_workers]
}

run "bad_zone_name_is_refused" {
  command = plan
  variables {
    zone = "Public_A"
  }
  expect_failures = [var.zone]
}

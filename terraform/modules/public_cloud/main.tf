# One public zone: a VPC with private subnets only (the gateway reaches the zone over the
# interconnect, never the internet), an EKS cluster with two node groups -- system (Ray head,
# event service, operators) and ray-workers (autoscaled within the topology's bounds) --
# S3 buckets for the landing log and the feature snapshots (encrypted, versioned, no public
# access), and least-privilege IAM: the event service may only write the landing bucket; the
# ranking workers may only read the features bucket.

locals {
  name = "isthmus-${var.zone}"
  tags = merge(var.tags, { "isthmus.io/zone" = var.zone, "isthmus.io/zone-kind" = "public" })
}

resource "aws_vpc" "this" {
  cidr_block           = var.vpc_cidr
  enable_dns_support   = true
  enable_dns_hostnames = true
  tags                 = merge(local.tags, { Name = local.name })
}

resource "aws_subnet" "private" {
  count             = length(var.availability_zones)
  vpc_id            = aws_vpc.this.id
  availability_zone = var.availability_zones[count.index]
  cidr_block        = cidrsubnet(var.vpc_cidr, 4, count.index)
  tags = merge(local.tags, {
    Name                              = "${local.name}-private-${var.availability_zones[count.index]}"
    "kubernetes.io/role/internal-elb" = "1" # where the internal load balancers go
  })
}

resource "aws_default_security_group" "this" {
  vpc_id = aws_vpc.this.id # no rules: the default group allows nothing
  tags   = local.tags
}

resource "aws_flow_log" "this" {
  depends_on           = [aws_s3_bucket_policy.audit]
  vpc_id               = aws_vpc.this.id
  traffic_type         = "ALL"
  log_destination_type = "s3"
  log_destination      = aws_s3_bucket.this["audit"].arn
  tags                 = local.tags
}

# ---- storage -------------------------------------------------------------------------
locals {
  buckets = toset(["landing", "features", "audit"])
}

resource "aws_s3_bucket" "this" {
  # checkov:skip=CKV2_AWS_6:every bucket gets aws_s3_bucket_public_access_block.this (for_each); checkov links only one for_each instance
  # checkov:skip=CKV_AWS_21:every bucket gets aws_s3_bucket_versioning.this (for_each); checkov links only one for_each instance
  # checkov:skip=CKV_AWS_145:every bucket gets KMS encryption from aws_s3_bucket_server_side_encryption_configuration.this (for_each); checkov links only one instance
  # checkov:skip=CKV2_AWS_62:no consumer of object events: the sync reads the landing log by its own checkpoint
  # checkov:skip=CKV_AWS_144:each public zone is its own failure domain; the private zone's sync reads the landing log within retention_days and the export job republishes features
  # checkov:skip=CKV_AWS_18:access logs of landing and features go to the audit bucket (aws_s3_bucket_logging.this); the audit bucket logging to itself would loop
  for_each      = local.buckets
  bucket_prefix = "${local.name}-${each.key}-"
  force_destroy = var.force_destroy_buckets
  tags          = merge(local.tags, { "isthmus.io/purpose" = each.key })
}

resource "aws_s3_bucket_public_access_block" "this" {
  for_each                = aws_s3_bucket.this
  bucket                  = each.value.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "this" {
  for_each = aws_s3_bucket.this
  bucket   = each.value.id
  versioning_configuration {
    status = "Enabled"
  }
}

data "aws_caller_identity" "this" {}

data "aws_iam_policy_document" "kms" {
  # A key policy's Resource "*" is the key itself (this is AWS's default key policy: the
  # account administers its key through IAM).
  # checkov:skip=CKV_AWS_111:a key policy; Resource "*" means this key only
  # checkov:skip=CKV_AWS_356:a key policy; Resource "*" means this key only
  # checkov:skip=CKV_AWS_109:a key policy; Resource "*" means this key only
  statement {
    sid       = "TheAccountAdministersItsKey"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:aws:iam::${data.aws_caller_identity.this.account_id}:root"]
    }
  }
}

resource "aws_kms_key" "this" {
  description             = "${local.name}: buckets and Kubernetes secrets"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.kms.json
  tags                    = local.tags
}

resource "aws_s3_bucket_server_side_encryption_configuration" "this" {
  for_each = aws_s3_bucket.this
  bucket   = each.value.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.this.arn
    }
    bucket_key_enabled = true
  }
}

# The audit bucket receives S3 access logs and VPC flow logs: only those two AWS services
# may write into it, only for this account's buckets and VPC (a fake AWS refused the access
# logs without this policy, as AWS does).
data "aws_iam_policy_document" "audit" {
  dynamic "statement" {
    for_each = toset(["landing", "features"]) # one statement per logged bucket's prefix
    content {
      sid       = "S3AccessLogsOf${title(statement.key)}"
      actions   = ["s3:PutObject"]
      resources = ["${aws_s3_bucket.this["audit"].arn}/access-logs/${statement.key}/*"]
      principals {
        type        = "Service"
        identifiers = ["logging.s3.amazonaws.com"]
      }
      condition {
        test     = "StringEquals"
        variable = "aws:SourceAccount"
        values   = [data.aws_caller_identity.this.account_id]
      }
    }
  }
  statement {
    sid       = "VpcFlowLogs"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.this["audit"].arn}/AWSLogs/${data.aws_caller_identity.this.account_id}/*"]
    principals {
      type        = "Service"
      identifiers = ["delivery.logs.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.this.account_id]
    }
  }
  statement {
    sid       = "VpcFlowLogsAclCheck"
    actions   = ["s3:GetBucketAcl"]
    resources = [aws_s3_bucket.this["audit"].arn]
    principals {
      type        = "Service"
      identifiers = ["delivery.logs.amazonaws.com"]
    }
  }
}

resource "aws_s3_bucket_policy" "audit" {
  bucket     = aws_s3_bucket.this["audit"].id
  policy     = data.aws_iam_policy_document.audit.json
  depends_on = [aws_s3_bucket_public_access_block.this]
}

resource "aws_s3_bucket_logging" "this" {
  for_each      = toset(["landing", "features"])
  bucket        = aws_s3_bucket.this[each.key].id
  target_bucket = aws_s3_bucket.this["audit"].id
  target_prefix = "access-logs/${each.key}/"
  depends_on    = [aws_s3_bucket_policy.audit]
}

resource "aws_s3_bucket_lifecycle_configuration" "kept" {
  for_each = { features = 30, audit = 400 }
  bucket   = aws_s3_bucket.this[each.key].id
  rule {
    id     = "expire-old-${each.key}"
    status = "Enabled"
    filter {}
    noncurrent_version_expiration {
      noncurrent_days = each.value
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "landing" {
  bucket = aws_s3_bucket.this["landing"].id
  rule {
    id     = "expire-synced-landing"
    status = "Enabled"
    filter {}
    expiration {
      days = var.retention_days
    }
    noncurrent_version_expiration {
      noncurrent_days = var.retention_days
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }
}

# ---- cluster ---------------------------------------------------------------------------
data "aws_iam_policy_document" "assume" {
  for_each = toset(["eks.amazonaws.com", "ec2.amazonaws.com"])
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = [each.key]
    }
  }
}

resource "aws_iam_role" "cluster" {
  name_prefix        = "${local.name}-cluster-"
  assume_role_policy = data.aws_iam_policy_document.assume["eks.amazonaws.com"].json
  tags               = local.tags
}

resource "aws_iam_role_policy_attachment" "cluster" {
  role       = aws_iam_role.cluster.name
  policy_arn = "arn:aws:iam::aws:policy/AmazonEKSClusterPolicy"
}

resource "aws_eks_cluster" "this" {
  name     = local.name
  role_arn = aws_iam_role.cluster.arn
  version  = var.kubernetes_version
  vpc_config {
    subnet_ids              = aws_subnet.private[*].id
    endpoint_private_access = true
    endpoint_public_access  = false
  }
  encryption_config {
    resources = ["secrets"]
    provider {
      key_arn = aws_kms_key.this.arn
    }
  }
  enabled_cluster_log_types = ["api", "audit", "authenticator", "controllerManager", "scheduler"]
  tags                      = local.tags
  depends_on                = [aws_iam_role_policy_attachment.cluster]
}

resource "aws_iam_role" "nodes" {
  name_prefix        = "${local.name}-nodes-"
  assume_role_policy = data.aws_iam_policy_document.assume["ec2.amazonaws.com"].json
  tags               = local.tags
}

resource "aws_iam_role_policy_attachment" "nodes" {
  for_each = toset([
    "arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy",
    "arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy",
    "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly",
  ])
  role       = aws_iam_role.nodes.name
  policy_arn = each.key
}

resource "aws_eks_node_group" "this" {
  for_each = {
    system      = { min = var.system_nodes.size, max = var.system_nodes.size, type = var.system_nodes.instance_type }
    ray-workers = { min = var.ray_workers.min_size, max = var.ray_workers.max_size, type = var.ray_workers.instance_type }
  }
  cluster_name    = aws_eks_cluster.this.name
  node_group_name = each.key
  node_role_arn   = aws_iam_role.nodes.arn
  subnet_ids      = aws_subnet.private[*].id
  instance_types  = [each.value.type]
  labels          = { "isthmus.io/node-group" = each.key }
  scaling_config {
    min_size     = each.value.min
    desired_size = each.value.min
    max_size     = each.value.max
  }
  update_config {
    max_unavailable = 1
  }
  tags       = local.tags
  depends_on = [aws_iam_role_policy_attachment.nodes]
  lifecycle {
    ignore_changes = [scaling_config[0].desired_size] # the cluster autoscaler owns it
  }
}

# ---- least-privilege access for the zone's workloads -------------------------------------
data "aws_iam_policy_document" "events_write" {
  statement {
    sid       = "AppendToTheLandingLog"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.this["landing"].arn}/*"]
  }
  statement {
    sid       = "EncryptWithTheZoneKey"
    actions   = ["kms:GenerateDataKey"]
    resources = [aws_kms_key.this.arn]
  }
}

data "aws_iam_policy_document" "ranking_read" {
  statement {
    sid       = "ReadFeatureSnapshots"
    actions   = ["s3:GetObject", "s3:ListBucket"]
    resources = [aws_s3_bucket.this["features"].arn, "${aws_s3_bucket.this["features"].arn}/*"]
  }
  statement {
    sid       = "DecryptWithTheZoneKey"
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.this.arn]
  }
}

resource "aws_iam_policy" "events_write" {
  name_prefix = "${local.name}-events-"
  policy      = data.aws_iam_policy_document.events_write.json
  tags        = local.tags
}

resource "aws_iam_policy" "ranking_read" {
  name_prefix = "${local.name}-ranking-"
  policy      = data.aws_iam_policy_document.ranking_read.json
  tags        = local.tags
}

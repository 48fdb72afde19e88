output "cluster_name" {
  description = "The zone's EKS cluster."
  value       = aws_eks_cluster.this.name
}

output "cluster_endpoint" {
  description = "Its API endpoint (private)."
  value       = aws_eks_cluster.this.endpoint
}

output "vpc_id" {
  description = "The zone's VPC, for the interconnect to the private cloud."
  value       = aws_vpc.this.id
}

output "private_subnet_ids" {
  description = "Where nodes and internal load balancers live."
  value       = aws_subnet.private[*].id
}

output "landing_bucket" {
  description = "The landing log's bucket (the private zone's sync reads it: s3a://BUCKET/events)."
  value       = aws_s3_bucket.this["landing"].bucket
}

output "features_bucket" {
  description = "The feature snapshots' bucket."
  value       = aws_s3_bucket.this["features"].bucket
}

output "events_policy_arn" {
  description = "Attach to the event service's service account (IRSA): write the landing log only."
  value       = aws_iam_policy.events_write.arn
}

output "ranking_policy_arn" {
  description = "Attach to the Ray workers' service account (IRSA): read feature snapshots only."
  value       = aws_iam_policy.ranking_read.arn
}

output "ray_worker_bounds" {
  description = "The Ray worker node group's bounds, as applied."
  value = {
    min = aws_eks_node_group.this["ray-workers"].scaling_config[0].min_size
    max = aws_eks_node_group.this["ray-workers"].scaling_config[0].max_size
  }
}

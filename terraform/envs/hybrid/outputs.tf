output "public_clusters" {
  description = "The public zones' EKS clusters."
  value = {
    public_a = module.public_a.cluster_name
    public_b = module.public_b.cluster_name
  }
}

output "landing_buckets" {
  description = "The landing log buckets the private zone's sync reads."
  value = {
    public_a = module.public_a.landing_bucket
    public_b = module.public_b.landing_bucket
  }
}

output "active_drills" {
  description = "Drills switched on, per zone."
  value = {
    private  = module.drills_private.active
    public_a = module.drills_public["public_a"].active
    public_b = module.drills_public["public_b"].active
  }
}

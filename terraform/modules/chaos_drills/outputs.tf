output "helm_values" {
  description = "The chart's values with only the `drills` block: merge it into the release's values (e.g. yamlencode for helm_release.values)."
  value       = { drills = local.drills }
  depends_on  = [terraform_data.checks] # its preconditions refuse what the chart must not get
}

output "active" {
  description = "Names of the drills this configuration switches on (empty when the master switch is off)."
  value = compact([
    local.drills.podChaos.enabled ? "public-nodes" : "",
    local.drills.privatePartition.enabled ? "private-partition" : "",
    local.drills.publicLink.enabled ? "latency-loss" : "",
    local.drills.databaseCut.enabled ? "db-down" : "",
  ])
}

# Validated drill switches -> the chart's `drills` values (deploy/helm/isthmus). The chart
# renders Chaos Mesh resources from them; creating those resources here instead would need
# the CRDs at plan time. A drill switched on for the wrong zone kind, or in a namespace
# that is not allowlisted, is refused at plan time rather than silently ignored.

locals {
  wrong_zone = compact([
    var.public_nodes.enabled && var.zone_kind != "public" ? "public_nodes runs in a public zone" : "",
    var.private_partition && var.zone_kind != "private" ? "private_partition runs in the private zone" : "",
    var.public_link.enabled && var.zone_kind != "private" ? "public_link runs in the private zone (the gateway's hop)" : "",
    var.database_cut.enabled && var.zone_kind != "private" ? "database_cut runs in the private zone" : "",
  ])

  drills = {
    enabled           = var.enabled
    allowedNamespaces = var.allowed_namespaces
    duration          = var.duration
    podChaos = {
      enabled = var.enabled && var.public_nodes.enabled
      percent = var.public_nodes.percent
    }
    privatePartition = {
      enabled     = var.enabled && var.private_partition
      latencyMs   = 0
      lossPercent = 0
    }
    publicLink = {
      enabled     = var.enabled && var.public_link.enabled
      latencyMs   = var.public_link.latency_ms
      lossPercent = var.public_link.loss_percent
    }
    databaseCut = {
      enabled = var.enabled && var.database_cut.enabled
      hosts   = var.database_cut.hosts
    }
    schedule = var.schedule
  }
}

resource "terraform_data" "checks" {
  input = local.drills

  lifecycle {
    precondition {
      condition     = !var.enabled || contains(var.allowed_namespaces, var.namespace)
      error_message = "drills are enabled but namespace ${var.namespace} is not in allowed_namespaces."
    }
    precondition {
      condition     = length(local.wrong_zone) == 0
      error_message = "drill for the wrong zone kind (${var.zone_kind}): ${join("; ", local.wrong_zone)}."
    }
  }
}

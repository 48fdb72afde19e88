# Peak-season windows -> the chart's `peakSeason` values, which the chart renders as CronJobs
# that raise the ranking replica floor at each window's start and restore it at its end.

locals {
  too_high = [for w in var.windows : w.name if w.min_replicas > var.max_replicas]
  values = {
    enabled = length(var.windows) > 0
    windows = [for w in var.windows : {
      name        = w.name
      start       = w.start
      end         = w.end
      minReplicas = w.min_replicas
    }]
  }
}

resource "terraform_data" "checks" {
  input = local.values

  lifecycle {
    precondition {
      condition     = length(local.too_high) == 0
      error_message = "window(s) ${join(", ", local.too_high)} ask for more replicas than max_replicas (${var.max_replicas}); raise AdsConfig's ceiling first."
    }
  }
}

# The chart, once per cluster: the zone's values from the topology, then the overlays, then
# the image digests. `atomic`: a release that does not become ready is rolled back.

locals {
  images = {
    image    = { repository = var.image.repository, digest = var.image.digest }
    rayImage = { repository = var.image.ray_repository, digest = var.image.ray_digest }
  }
}

resource "helm_release" "this" {
  name             = var.release_name
  namespace        = var.namespace
  chart            = var.chart_path
  create_namespace = false # the cluster module owns namespaces and their labels
  atomic           = true
  wait             = true
  timeout          = var.timeout_s
  values = concat(
    [var.zone_values_yaml],
    [for overlay in var.overlays : yamlencode(overlay)],
    [yamlencode(local.images)],
  )
}

# The on-premises cluster, reached by kubeconfig (the provider's configuration): the private
# zone's namespace under the `restricted` Pod Security Standard, and the labels the chart's
# NetworkPolicies key on. Secrets are referenced by name only: their values never pass
# through Terraform.

resource "kubernetes_namespace_v1" "private" {
  metadata {
    name = var.namespace
    labels = {
      "isthmus.io/zone-kind"                       = "private"
      "pod-security.kubernetes.io/enforce"         = "restricted"
      "pod-security.kubernetes.io/enforce-version" = "latest"
    }
  }
}

resource "kubernetes_labels" "callers" {
  for_each    = toset(var.caller_namespaces)
  api_version = "v1"
  kind        = "Namespace"
  metadata {
    name = each.key
  }
  labels = { "isthmus.io/caller" = "true" }
}

resource "kubernetes_labels" "monitoring" {
  count       = var.monitoring_namespace == "" ? 0 : 1
  api_version = "v1"
  kind        = "Namespace"
  metadata {
    name = var.monitoring_namespace
  }
  labels = { "isthmus.io/monitoring" = "true" }
}

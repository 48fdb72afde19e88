output "namespace" {
  description = "The private zone's namespace."
  value       = kubernetes_namespace_v1.private.metadata[0].name
}

output "helm_values" {
  description = "The chart's values naming the Secrets this cluster holds."
  value = {
    pseudonymCheckSecret = var.secret_names.pseudonym
    gateway = {
      tlsSecret         = var.secret_names.gateway_tls
      upstreamTlsSecret = var.secret_names.upstream_tls
      tokenSecret       = var.secret_names.token
    }
    private = {
      databaseSecret = var.secret_names.database
      keysSecret     = var.secret_names.keys
    }
  }
}

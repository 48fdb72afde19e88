variable "namespace" {
  description = "Namespace of the private zone's release."
  type        = string
  default     = "isthmus-private"
}

variable "caller_namespaces" {
  description = "Namespaces of the internal services that call the gateway: labelled isthmus.io/caller=true (the chart's NetworkPolicy admits only those)."
  type        = list(string)
  default     = []
}

variable "monitoring_namespace" {
  description = "Namespace of the Prometheus that scrapes the gateway (labelled isthmus.io/monitoring=true); empty = none."
  type        = string
  default     = ""
}

variable "secret_names" {
  description = "Names of the Secrets the chart mounts, created out of band (a secrets operator or your vault), never in Terraform state."
  type = object({
    database     = optional(string, "isthmus-postgres")
    keys         = optional(string, "isthmus-keys")
    gateway_tls  = optional(string, "isthmus-gateway-tls")
    upstream_tls = optional(string, "isthmus-gateway-upstream-tls")
    token        = optional(string, "isthmus-gateway-token")
    pseudonym    = optional(string, "isthmus-pseudonym-check")
  })
  default = {}
}

variable "zone" {
  description = "The public zone's name in the topology (e.g. public-a); prefixes every resource."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,38}[a-z0-9]$", var.zone))
    error_message = "zone must be a DNS-label style name of 2-40 characters, as in the topology."
  }
}

variable "vpc_cidr" {
  description = "CIDR of the zone's VPC; must not overlap the private cloud's (the interconnect routes both)."
  type        = string
  default     = "10.20.0.0/16"

  validation {
    condition     = can(cidrnetmask(var.vpc_cidr)) && tonumber(split("/", var.vpc_cidr)[1]) <= 20
    error_message = "vpc_cidr must be an IPv4 CIDR of /20 or larger."
  }
}

variable "availability_zones" {
  description = "Availability zones for the private subnets (one subnet each; at least two)."
  type        = list(string)

  validation {
    condition     = length(var.availability_zones) >= 2
    error_message = "give at least two availability zones: a zone's nodes must survive losing one."
  }
}

variable "kubernetes_version" {
  description = "EKS control plane version."
  type        = string
  default     = "1.31"

  validation {
    condition     = can(regex("^1\\.(2[7-9]|3[0-9])$", var.kubernetes_version))
    error_message = "kubernetes_version must be 1.27 or newer (the chart's kubeVersion)."
  }
}

variable "ray_workers" {
  description = "Ray worker node group bounds: from the topology (`isthmus render helm-values`' workerGroup) -- min, max, and the instance type."
  type = object({
    min_size      = number
    max_size      = number
    instance_type = optional(string, "c6i.xlarge")
  })

  validation {
    condition     = var.ray_workers.min_size >= 1 && var.ray_workers.min_size <= var.ray_workers.max_size && var.ray_workers.max_size <= 200
    error_message = "ray_workers: need 1 <= min_size <= max_size <= 200."
  }
}

variable "system_nodes" {
  description = "Node group for the head, the event service and the operators (fixed size)."
  type = object({
    size          = optional(number, 2)
    instance_type = optional(string, "m6i.large")
  })
  default = {}

  validation {
    condition     = var.system_nodes.size >= 2
    error_message = "system_nodes.size must be at least 2."
  }
}

variable "retention_days" {
  description = "Days the landing log's objects are kept after the sync has read them (lifecycle expiry)."
  type        = number
  default     = 14

  validation {
    condition     = var.retention_days >= 1 && var.retention_days <= 365
    error_message = "retention_days must be 1..365."
  }
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}

variable "force_destroy_buckets" {
  description = "Let `terraform destroy` delete buckets that still hold objects (audit logs included). Throwaway environments and tests only; off by default."
  type        = bool
  default     = false
}

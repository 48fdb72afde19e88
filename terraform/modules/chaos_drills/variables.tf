variable "enabled" {
  description = "Master switch: no drill renders unless this is true (off by default)."
  type        = bool
  default     = false
}

variable "zone_kind" {
  description = "Kind of the zone whose release gets these values: private or public."
  type        = string

  validation {
    condition     = contains(["private", "public"], var.zone_kind)
    error_message = "zone_kind must be \"private\" or \"public\"."
  }
}

variable "namespace" {
  description = "Namespace of the release; a drill may only run where it is allowlisted."
  type        = string
}

variable "allowed_namespaces" {
  description = "Namespaces drills may touch. With drills enabled, the release's namespace must be one of them."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for ns in var.allowed_namespaces : can(regex("^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", ns))])
    error_message = "allowed_namespaces must be Kubernetes namespace names (DNS labels)."
  }
}

variable "duration" {
  description = "Length of each network fault, e.g. \"60s\" or \"5m\"."
  type        = string
  default     = "60s"

  validation {
    condition     = can(regex("^[0-9]+(s|m)$", var.duration))
    error_message = "duration must look like 60s or 5m."
  }
}

variable "public_nodes" {
  description = "public-nodes-30 (public zones): kill this percentage of the Ray worker pods."
  type = object({
    enabled = bool
    percent = optional(number, 30)
  })
  default = { enabled = false }

  validation {
    condition     = var.public_nodes.percent >= 1 && var.public_nodes.percent <= 100 && floor(var.public_nodes.percent) == var.public_nodes.percent
    error_message = "public_nodes.percent must be a whole number from 1 to 100."
  }
}

variable "private_partition" {
  description = "private-partition (private zone): cut the gateway <-> private services traffic."
  type        = bool
  default     = false
}

variable "public_link" {
  description = "latency-loss (private zone): delay and loss on the gateway's hop to the public zones."
  type = object({
    enabled      = bool
    latency_ms   = optional(number, 100)
    loss_percent = optional(number, 10)
  })
  default = { enabled = false }

  validation {
    condition     = var.public_link.latency_ms >= 0 && var.public_link.latency_ms <= 10000 && var.public_link.loss_percent >= 0 && var.public_link.loss_percent <= 100
    error_message = "public_link: latency_ms must be 0..10000 and loss_percent 0..100."
  }
}

variable "database_cut" {
  description = "db-down (private zone): cut the pods serving SENSITIVE RPCs off from the database's addresses (IPs or CIDRs)."
  type = object({
    enabled = bool
    hosts   = optional(list(string), [])
  })
  default = { enabled = false }

  validation {
    condition     = !var.database_cut.enabled || length(var.database_cut.hosts) > 0
    error_message = "database_cut needs the database's hosts it cuts off."
  }
}

variable "schedule" {
  description = "Cron schedule to repeat the enabled drills on (Chaos Mesh Schedule); empty = run once."
  type        = string
  default     = ""

  validation {
    condition     = var.schedule == "" || length(split(" ", trimspace(var.schedule))) == 5
    error_message = "schedule must be empty or a five-field cron expression."
  }
}

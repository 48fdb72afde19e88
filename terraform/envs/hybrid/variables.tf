variable "private_kubeconfig" {
  description = "Path of the kubeconfig of the on-premises cluster (the private zone)."
  type        = string
}

variable "private_context" {
  description = "Context in that kubeconfig."
  type        = string
}

variable "regions" {
  description = "AWS regions of the two public zones: public-a (priority 0) and public-b (priority 1)."
  type = object({
    public_a = string
    public_b = string
  })
  default = { public_a = "eu-west-1", public_b = "eu-central-1" }

  validation {
    condition     = var.regions.public_a != var.regions.public_b
    error_message = "the two public zones must be in different regions (a region outage is what public-b is for)."
  }
}

variable "image" {
  description = "Image repositories and digests (see modules/isthmus_release)."
  type = object({
    repository     = string
    digest         = string
    ray_repository = string
    ray_digest     = string
  })
}

variable "caller_namespaces" {
  description = "Namespaces of the private cluster whose services call the gateway."
  type        = list(string)
  default     = []
}

variable "ray_workers" {
  description = "Ray worker node bounds per public zone (from `isthmus render helm-values`' workerGroup)."
  type = map(object({
    min_size = number
    max_size = number
  }))
  default = {
    public_a = { min_size = 3, max_size = 8 }
    public_b = { min_size = 1, max_size = 8 }
  }
}

variable "drills" {
  description = "Chaos drills, all off by default: the master switch, then one flag per drill (see modules/chaos_drills)."
  type = object({
    enabled           = optional(bool, false)
    public_nodes      = optional(bool, false)
    private_partition = optional(bool, false)
    public_link       = optional(bool, false)
    database_cut      = optional(bool, false)
    database_hosts    = optional(list(string), [])
    schedule          = optional(string, "")
  })
  default = {}
}

variable "peak_windows" {
  description = "Peak-season windows applied to both public zones (see modules/peak_season)."
  type = list(object({
    name         = string
    start        = string
    end          = string
    min_replicas = number
  }))
  default = []
}

variable "ranking_max_replicas" {
  description = "AdsConfig autoscaling.max_replicas of the ranking deployment."
  type        = number
  default     = 4
}

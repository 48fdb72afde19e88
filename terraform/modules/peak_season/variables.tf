variable "windows" {
  description = "Sale windows: name, start and end (five-field cron, the cluster's time zone) and the ranking replica floor inside the window. Seed scenario: raise the floor the day before the sale, release it after."
  type = list(object({
    name         = string
    start        = string
    end          = string
    min_replicas = number
  }))
  default = []

  validation {
    condition     = alltrue([for w in var.windows : can(regex("^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", w.name))])
    error_message = "every window name must be a DNS label (lower-case letters, digits, dashes)."
  }
  validation {
    condition     = alltrue([for w in var.windows : length(split(" ", trimspace(w.start))) == 5 && length(split(" ", trimspace(w.end))) == 5])
    error_message = "start and end must be five-field cron expressions."
  }
  validation {
    condition     = alltrue([for w in var.windows : w.min_replicas >= 1 && w.min_replicas <= 200 && floor(w.min_replicas) == w.min_replicas])
    error_message = "min_replicas must be a whole number from 1 to 200."
  }
  validation {
    condition     = length(distinct([for w in var.windows : w.name])) == length(var.windows)
    error_message = "window names must be unique."
  }
}

variable "max_replicas" {
  description = "The ranking deployment's ceiling (AdsConfig autoscaling.max_replicas): a window's floor may not exceed it."
  type        = number

  validation {
    condition     = var.max_replicas >= 1
    error_message = "max_replicas must be at least 1."
  }
}

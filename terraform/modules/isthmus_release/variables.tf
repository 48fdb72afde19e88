variable "namespace" {
  description = "Namespace of the release (one zone per namespace)."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", var.namespace))
    error_message = "namespace must be a DNS label."
  }
}

variable "release_name" {
  description = "Helm release name."
  type        = string
  default     = "isthmus"
}

variable "chart_path" {
  description = "Path of the chart (deploy/helm/isthmus in this repository)."
  type        = string
}

variable "zone_values_yaml" {
  description = "The zone's values as `isthmus render helm-values --zone NAME` writes them (YAML text): the topology is the source of truth."
  type        = string
}

variable "overlays" {
  description = "Further values merged over the zone's, in order (e.g. chaos_drills' and peak_season's helm_values outputs)."
  type        = list(any)
  default     = []
}

variable "image" {
  description = "The services image and the Ray image, pinned by digest."
  type = object({
    repository     = string
    digest         = string
    ray_repository = string
    ray_digest     = string
  })

  validation {
    condition     = can(regex("^sha256:[0-9a-f]{64}$", var.image.digest)) && can(regex("^sha256:[0-9a-f]{64}$", var.image.ray_digest))
    error_message = "images are deployed by digest (sha256:<64 hex>), never by tag alone."
  }
}

variable "timeout_s" {
  description = "How long Helm waits for the release to be ready before rolling back (atomic)."
  type        = number
  default     = 900
}

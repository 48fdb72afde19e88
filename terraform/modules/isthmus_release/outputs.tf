output "revision" {
  description = "The release's revision after this apply."
  value       = helm_release.this.metadata[0].revision
}

output "status" {
  description = "The release's status (deployed when healthy)."
  value       = helm_release.this.status
}

output "helm_values" {
  description = "The chart's values with only the `peakSeason` block."
  value       = { peakSeason = local.values }
  depends_on  = [terraform_data.checks]
}

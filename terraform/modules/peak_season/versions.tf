terraform {
  # Pure module: no provider. Its output is the chart's `peakSeason` values block.
  required_version = ">= 1.7.0"
}

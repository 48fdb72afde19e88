variables {
  max_replicas = 12
}

run "no_windows_is_off" {
  command = plan
  assert {
    condition     = output.helm_values.peakSeason.enabled == false
    error_message = "without windows the CronJobs are not rendered"
  }
}

run "black_friday" {
  command = plan
  variables {
    windows = [{ name = "black-friday", start = "0 6 26 11 *", end = "0 6 1 12 *", min_replicas = 8 }]
  }
  assert {
    condition     = output.helm_values.peakSeason.enabled && output.helm_values.peakSeason.windows[0].minReplicas == 8
    error_message = "the window reaches the chart with its floor"
  }
}

run "floor_above_the_ceiling_is_refused" {
  command = plan
  variables {
    windows = [{ name = "too-much", start = "0 6 26 11 *", end = "0 6 1 12 *", min_replicas = 40 }]
  }
  expect_failures = [terraform_data.checks]
}

run "bad_cron_is_refused" {
  command = plan
  variables {
    windows = [{ name = "typo", start = "every friday", end = "0 6 1 12 *", min_replicas = 4 }]
  }
  expect_failures = [var.windows]
}

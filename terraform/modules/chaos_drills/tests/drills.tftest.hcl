# terraform test: the switches, their defaults and their refusals (no provider needed).

variables {
  zone_kind          = "public"
  namespace          = "isthmus-public-a"
  allowed_namespaces = ["isthmus-public-a"]
}

run "off_by_default" {
  command = plan

  assert {
    condition     = length(output.active) == 0
    error_message = "no drill may be active by default"
  }
  assert {
    condition     = output.helm_values.drills.enabled == false
    error_message = "the master switch defaults to off"
  }
}

run "public_nodes_on" {
  command = apply

  variables {
    enabled      = true
    public_nodes = { enabled = true, percent = 30 }
    schedule     = "0 3 * * 1"
  }

  assert {
    condition     = length(output.active) == 1 && output.active[0] == "public-nodes"
    error_message = "only public-nodes is on"
  }
  assert {
    condition     = output.helm_values.drills.podChaos.percent == 30
    error_message = "the percentage reaches the chart"
  }
}

run "a_flag_without_the_master_switch_does_nothing" {
  command = plan

  variables {
    public_nodes = { enabled = true }
  }

  assert {
    condition     = length(output.active) == 0
    error_message = "the master switch gates every drill"
  }
}

run "namespace_not_allowlisted" {
  command = plan

  variables {
    enabled            = true
    allowed_namespaces = ["somewhere-else"]
    public_nodes       = { enabled = true }
  }

  expect_failures = [terraform_data.checks]
}

run "invalid_percent" {
  command = plan

  variables {
    public_nodes = { enabled = true, percent = 130 }
  }

  expect_failures = [var.public_nodes]
}

run "partition_in_a_public_zone" {
  command = plan

  variables {
    enabled           = true
    private_partition = true
  }

  expect_failures = [terraform_data.checks]
}

run "database_cut_on_in_the_private_zone" {
  command = apply

  variables {
    enabled            = true
    zone_kind          = "private"
    namespace          = "isthmus-private"
    allowed_namespaces = ["isthmus-private"]
    database_cut       = { enabled = true, hosts = ["10.40.0.15"] }
  }

  assert {
    condition     = length(output.active) == 1 && output.active[0] == "db-down"
    error_message = "only db-down is on"
  }
  assert {
    condition     = length(output.helm_values.drills.databaseCut.hosts) == 1 && output.helm_values.drills.databaseCut.hosts[0] == "10.40.0.15"
    error_message = "the database's hosts reach the chart"
  }
}

run "database_cut_without_hosts" {
  command = plan

  variables {
    database_cut = { enabled = true }
  }

  expect_failures = [var.database_cut]
}

run "database_cut_in_a_public_zone" {
  command = plan

  variables {
    enabled      = true
    database_cut = { enabled = true, hosts = ["10.40.0.15"] }
  }

  expect_failures = [terraform_data.checks]
}

"""Ray jobs: training the CTR model on a local or remote Ray cluster (issue #4)."""

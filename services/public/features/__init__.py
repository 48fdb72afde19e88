"""Feature snapshots the public zone reads (written by the Spark export, issue #6)."""

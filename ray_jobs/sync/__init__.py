"""Spark data jobs between the zones (issue #6).

- `sync_events`: public landing log -> private warehouse (Structured Streaming, exactly once,
  quarantine for malformed lines, cross-batch dedup on event_id).
- `export_features`: warehouse + profiles' non-PII attributes -> public feature snapshot
  (allowlisted columns, k-anonymous segments, atomic versioned publish).
- `training_set`: warehouse events joined with features, for the training job.
- `erasure`: purge erased people from the warehouse; the next snapshot leaves them out.

Pure decisions live in `schema`, `features_logic`, `allowlist`, `scan` and `sinklog`; Spark and
file I/O stay in the job modules. Run them with `isthmus sync ...` (see `cli`).
"""

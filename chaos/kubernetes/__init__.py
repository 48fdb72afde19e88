"""The drills' Kubernetes target: actions and probes on what the chart deployed, through the
Kubernetes API (the `kubernetes` client). See actions.py and probes.py."""

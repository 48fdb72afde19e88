"""Kubernetes deployment artefacts generated from the topology: the Helm chart's values and
schema (`isthmus render`), the public zone's Serve config, and the peak-season job."""

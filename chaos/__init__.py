"""Chaos drills (Chaos Toolkit actions and probes over the topology). Built in a later issue."""

"""Chaos drills: a Chaos Toolkit extension (per target `actions.py` and `probes.py`), one
experiment file per drill in `drills/`, and the runner behind `isthmus chaos`."""

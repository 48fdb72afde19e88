"""`python -m ray_jobs.sync JOB ...`: the same as `isthmus sync JOB ...` (for Ray jobs)."""

import sys

from ray_jobs.sync.cli import main

sys.exit(main())

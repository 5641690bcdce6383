"""training."""

import os

# The user's OMP_NUM_THREADS, read when the first training module is imported, before any of them imports
# Ultralytics, whose import sets it to 1 where unset (and so trained on one of the two cores).
USER_OMP_THREADS = os.environ.get("OMP_NUM_THREADS")

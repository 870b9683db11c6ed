"""action-policy (seed 004): calibrated 5-way action classification; see task.py."""

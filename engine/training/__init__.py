"""Implementation of the trainer; import the public API from ``engine.trainer``."""

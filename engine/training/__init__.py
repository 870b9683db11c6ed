"""Implementation of the trainer; import the public API from ``agentdeck.engine.trainer``."""

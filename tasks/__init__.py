"""The built-in tasks, one package each.

They register through the ``agentdeck.tasks`` entry-point group in
``pyproject.toml`` (see ``agentdeck.engine.registry``), like any third-party
task package; the task interface they implement is ``agentdeck.engine.task``.
"""

"""The dataset layer: loaders for the tasks' public data sets.

Import from ``agentdeck.engine.datasets`` (the public face); the modules here hold the
parts: ``paths`` (where data lives), ``sources`` (URLs and published
checksums), ``download`` (resumable verified downloads), ``idx`` (the IDX
format), ``images`` (image data sets), ``agnews`` (AG News), ``fetch`` (find
or download a data set's files), ``errors``.
"""

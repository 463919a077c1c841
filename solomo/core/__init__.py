"""The bottom layer: what every domain package and the API share.

Nothing here imports ``solomo.api``, ``solomo.realtime``, a domain package (``checkins``,
``feed``, ``geo``, ``offers``, ``moderation``) or ``workers``; ``make lint`` checks it (see the
``[tool.importlinter]`` contracts in ``pyproject.toml``).
"""

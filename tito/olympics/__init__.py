"""The AI Olympics: submission bundles, their validation, and the leaderboard service.

- ``bundle``: the submission format (a model described as data: JSON architecture + NumPy
  weights + metadata), packing and validation. NumPy and the standard library only; nothing
  is ever unpickled or executed.
- ``evaluate``: rebuilds a bundle's model from the reference layers and scores it; run by the
  worker in a sandboxed child (``sandbox``).
- ``server``, ``worker``, ``db``: the service (needs the ``olympics`` extra).
- ``cli``: the ``tito olympics`` commands.
"""

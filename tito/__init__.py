"""tito: the TinyTorch command line (export, check, release, learner workspace, milestones)."""

__version__ = "0.1.0"

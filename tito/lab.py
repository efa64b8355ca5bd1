"""The command line that opens a learner's JupyterLab (kept apart so tests can check it).

Two things a student's Lab needs that a plain ``jupyter lab`` does not give:

* as root (containers, Codespaces) Jupyter refuses to start without ``--allow-root``;
* nbgrader's *instructor* extensions (formgrader, course list, ...) are installed with
  nbgrader and log errors in a student's Lab. The workspace owns a Jupyter config folder
  (``.tinytorch/jupyter``, via ``JUPYTER_CONFIG_DIR``) that switches them off; the
  student's own Jupyter settings elsewhere are not touched.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

NBGRADER_SERVER_EXTENSIONS = (
    "nbgrader.server_extensions.formgrader", "nbgrader.server_extensions.assignment_list",
    "nbgrader.server_extensions.course_list", "nbgrader.server_extensions.validate_assignment",
)
NBGRADER_LAB_EXTENSION = "@jupyter/nbgrader"


def student_jupyter_config(root: Path) -> Path:
    """Write (idempotently) the workspace's Jupyter config folder; return it."""
    cfg = root / ".tinytorch" / "jupyter"
    (cfg / "labconfig").mkdir(parents=True, exist_ok=True)
    server = {"ServerApp": {"jpserver_extensions": {name: False for name in NBGRADER_SERVER_EXTENSIONS}}}
    (cfg / "jupyter_server_config.json").write_text(json.dumps(server, indent=2) + "\n", encoding="utf-8")
    page = {"disabledExtensions": {NBGRADER_LAB_EXTENSION: True}}
    (cfg / "labconfig" / "page_config.json").write_text(json.dumps(page, indent=2) + "\n", encoding="utf-8")
    return cfg


def lab_command(jupyter: str, notebook: Path, root: Path, env: dict[str, str],
                euid: int | None = None) -> tuple[list[str], dict[str, str]]:
    """(argv, environment) that open ``notebook`` in JupyterLab for the workspace at ``root``."""
    cmd = [jupyter] + ([] if Path(jupyter).name.startswith("jupyter-lab") else ["lab"]) + [str(notebook)]
    if (os.geteuid() if euid is None else euid) == 0:
        cmd.append("--allow-root")
    env = dict(env, JUPYTER_CONFIG_DIR=str(student_jupyter_config(root)))
    return cmd, env

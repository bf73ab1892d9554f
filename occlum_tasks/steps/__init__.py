"""The build graph as doit task generators (DESIGN.md section 4).

An instance's dodo.py is `from occlum_tasks.steps import *` plus DOIT_CONFIG; the
`occlum build` command loads this same module, so both front doors run one graph.
"""
from .build import BuildReporter, task_build
from .common import ImageFileChecker, TolerantJSONCodec
from ..paths import DEP_FILE
from .config import task_config
from .image import task_image
from .initfs import task_initfs
from .runtime import task_runtime
from .sign import task_sign
from .sysconf import task_sysconf

DOIT_CONFIG = {
    "default_tasks": ["build"],
    # json, not dbm: dbm's format changes between Python versions
    "backend": "json",
    "dep_file": str(DEP_FILE),
    "reporter": BuildReporter,
    "check_file_uptodate": ImageFileChecker,
    # a database cut short by a kill reads as empty: every step runs again
    "codec_cls": TolerantJSONCodec,
    "verbosity": 2,
}

__all__ = ["DOIT_CONFIG", "task_build", "task_config", "task_image", "task_initfs",
           "task_runtime", "task_sign", "task_sysconf"]

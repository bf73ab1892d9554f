"""Step `config`: Occlum.json -> build/Occlum.resolved.json (validated, defaults
filled, sizes in bytes)."""
import json

from doit.exceptions import TaskFailed
from doit.tools import config_changed

from ..errors import OcclumError
from ..fsutil import write_atomic
from .common import BuildOptions, existing, info, step_action
from ..config import schema_path
from ..paths import BUILD_DIR, OCCLUM_JSON
from .stage import RESOLVED_JSON, with_outputs


@step_action
def resolve_config():
    problem = BuildOptions().problem()
    if problem:
        return TaskFailed(problem)
    if not OCCLUM_JSON.is_file():
        raise OcclumError(f"{OCCLUM_JSON}: no such file; run `occlum init` in this folder first")
    from ..config import load_config  # jsonschema loads only when this step runs
    loaded = load_config(OCCLUM_JSON)
    for warning in loaded.warnings:
        info(f"warning: {warning}")
    write_atomic(RESOLVED_JSON, json.dumps(loaded.resolved, indent=2, sort_keys=True) + "\n")


def task_config():
    # doit keeps its dependency database in build/, which must exist before it saves
    BUILD_DIR.mkdir(exist_ok=True)
    opts = BuildOptions()
    return with_outputs({
        "doc": "validate Occlum.json into build/Occlum.resolved.json (defaults filled, sizes in bytes)",
        "actions": [resolve_config],
        "file_dep": existing(OCCLUM_JSON, schema_path()),
        "targets": [str(RESOLVED_JSON)],
        # a bad option must stop the build here, before any other step runs
        "uptodate": [config_changed({"sgx_mode": opts.sgx_mode, "problem": opts.problem()})],
        "clean": True,
    }, [RESOLVED_JSON])

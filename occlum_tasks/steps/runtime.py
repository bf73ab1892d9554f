"""Step `runtime`: build/lib/runtime.manifest, the hashes of the LibOS code that
`occlum run` will execute. The manifest is measured into MRENCLAVE, so a changed
runtime is a different enclave."""
from doit.tools import config_changed

# the hashing is shared with `occlum run`, which checks the code against the manifest
from ..runtime_manifest import libos_sources, manifest_text, unicorn_version
from ..fsutil import write_atomic
from .common import step_action
from ..paths import RUNTIME_MANIFEST

@step_action
def write_manifest():
    write_atomic(RUNTIME_MANIFEST, manifest_text())


def task_runtime():
    return {
        "doc": "hash the LibOS runtime code into build/lib/runtime.manifest",
        "actions": [write_manifest],
        "file_dep": [str(p) for p in libos_sources()],
        "targets": [str(RUNTIME_MANIFEST)],
        "uptodate": [config_changed(unicorn_version())],
        "clean": True,
    }

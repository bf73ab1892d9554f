"""Step `runtime`: build/lib/runtime.manifest, the hashes of every file of the code that
`occlum run` executes inside the enclave (the LibOS, SEFS, unicorn's binding and its
shared library; docs/runtime-boundary.md). The manifest is measured into MRENCLAVE, so
a changed runtime is a different enclave."""
# the hashing is shared with `occlum run`, which checks the code against the manifest
from ..runtime_manifest import manifest_text, runtime_files
from ..fsutil import write_atomic
from .common import step_action
from .stage import RUNTIME_MANIFEST, with_outputs


@step_action
def write_manifest():
    write_atomic(RUNTIME_MANIFEST, manifest_text())


def task_runtime():
    return with_outputs({
        "doc": "hash the runtime (LibOS, SEFS, unicorn) into build/lib/runtime.manifest",
        "actions": [write_manifest],
        # unicorn's version needs no check of its own: its files are among these
        "file_dep": [str(path) for _, path in runtime_files()],
        "targets": [str(RUNTIME_MANIFEST)],
        "clean": True,
    }, [RUNTIME_MANIFEST])

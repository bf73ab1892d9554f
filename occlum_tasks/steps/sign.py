"""Step `sign`: measure the enclave (runtime manifest, config MAC, limits) and sign
its SIGSTRUCT. The writable layer run/ is looked after when the build is committed
(commit.py), not here: until then the previous build is the one in place."""
import json
import os

from doit.tools import config_changed

from ..fsutil import write_atomic
from .common import BuildOptions, existing, info, kill_point, step_action
from .stage import LAYOUT, RESOLVED_JSON, RUNTIME_MANIFEST, SIGSTRUCT, SYS_MAC, with_outputs


def signer_for(opts):
    """A private key, or the external tool with the signer's public key."""
    from ..sgx.signing import SignTool, debug_key_path, load_signing_key
    if opts.sign_tool:
        return SignTool(opts.sign_tool, opts.sign_key)
    return load_signing_key(opts.sign_key or debug_key_path())


@step_action
def sign_enclave():
    from ..image.keys import parse_mac
    from ..sgx.layout import EnclaveLayout
    from ..sgx.measurement import measure
    from ..sgx.sigstruct import make_sigstruct
    opts = BuildOptions()
    resolved = json.loads(RESOLVED_JSON.read_text())
    manifest = RUNTIME_MANIFEST.read_bytes()
    config_mac = parse_mac(SYS_MAC.read_text())
    signer = signer_for(opts)
    # make_sigstruct refuses a production enclave signed with the shipped debug key
    layout = EnclaveLayout.from_config(resolved, manifest, config_mac)
    mrenclave = measure(layout, manifest, config_mac)
    sigstruct = make_sigstruct(mrenclave, resolved, signer)
    write_atomic(LAYOUT, layout.to_json())
    kill_point("inside:sign")
    write_atomic(SIGSTRUCT, sigstruct)
    info(f"sign: MRENCLAVE {mrenclave.hex()}")


def task_sign():
    from ..sgx.layout import LAYOUT_FILE_VERSION
    opts = BuildOptions()
    return with_outputs({
        "doc": "measure the enclave (MRENCLAVE) and sign build/lib/enclave.sigstruct",
        "actions": [sign_enclave],
        "file_dep": [str(RUNTIME_MANIFEST), str(SYS_MAC), str(RESOLVED_JSON)]
                    + existing(opts.sign_key, opts.sign_tool),
        "targets": [str(SIGSTRUCT), str(LAYOUT)],
        "uptodate": [config_changed({"sign_key": str(opts.sign_key or ""),
                                     "sign_tool": str(opts.sign_tool or ""),
                                     # it sets the SIGSTRUCT's DATE
                                     "date": os.environ.get("SOURCE_DATE_EPOCH", ""),
                                     # a new layout file format is written again
                                     "layout_file": LAYOUT_FILE_VERSION})],
        "clean": True,
    }, [LAYOUT, SIGSTRUCT])

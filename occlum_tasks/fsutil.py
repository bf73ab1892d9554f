"""Host file helpers shared by the build and the CLI."""
import os
import tempfile
from pathlib import Path


def write_atomic(path, data, mode=0o644):
    """Write to a temporary name beside `path`, then rename: an interrupted build
    never leaves a half-written target that a later build takes as current."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix="." + path.name + ".")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise

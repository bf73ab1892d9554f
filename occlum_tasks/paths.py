"""Paths inside an instance folder (DESIGN.md section 3), relative to it.

Kept apart from the build steps so that `occlum run` can name them without
importing doit."""
from pathlib import Path

OCCLUM_JSON = Path("Occlum.json")
IMAGE_DIR = Path("image")
BUILD_DIR = Path("build")
RESOLVED_JSON = BUILD_DIR / "Occlum.resolved.json"
CACHE_DIR = BUILD_DIR / ".cache"
IMAGE_ROOT = BUILD_DIR / "mount" / "__ROOT"
IMAGE_ROOT_MAC = BUILD_DIR / "mount" / ".ROOT_MAC"
INITFS_SRC = CACHE_DIR / "initfs"
INITFS_ROOT = BUILD_DIR / "initfs" / "__ROOT"
INITFS_ROOT_MAC = BUILD_DIR / "initfs" / ".ROOT_MAC"
SYS_JSON = BUILD_DIR / ".Occlum_sys.json"
SYS_PROTECTED = BUILD_DIR / ".Occlum_sys.json.protected"
SYS_MAC = BUILD_DIR / ".Occlum_sys.mac"
RUNTIME_MANIFEST = BUILD_DIR / "lib" / "runtime.manifest"
SIGSTRUCT = BUILD_DIR / "lib" / "enclave.sigstruct"
LAYOUT = BUILD_DIR / "lib" / "enclave.layout"
RUN_DIR = Path("run")
RUN_ROOT = RUN_DIR / "mount" / "__ROOT"
RUN_OWNER = RUN_DIR / ".owner"
STATUS_FILE = Path(".__occlum_status")
DEP_FILE = BUILD_DIR / ".doit.db"

"""occlum-py: Occlum's workflow for machines without SGX."""
__version__ = "0.1.0"

# where templates/ and schemas/ are, in a checkout and in an installed wheel
from .paths import SCHEMAS_DIR, TEMPLATES_DIR  # noqa: E402,F401

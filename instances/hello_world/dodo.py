"""Occlum instance build (hello_world): `doit list` shows the steps, `doit build` builds."""
from occlum_tasks.steps import *  # noqa: F401,F403 - the build graph's task generators

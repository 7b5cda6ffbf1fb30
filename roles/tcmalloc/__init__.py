"""The tcmalloc role: the allocator vLLM's CPU backend is preloaded with.

The package and library path come from the profile (distro and architecture).
"""

from pyinfra.api import deploy
from pyinfra.operations import apt

from armada.errors import DataError
from armada.role import Role, RoleRun


def preflight(run: RoleRun):
    """A host whose distro or architecture has no tcmalloc armada knows is refused before any change."""
    if run.profile.tcmalloc_package is None:
        yield DataError(run.host.name, "armada_roles", "tcmalloc", run.profile.reasons["tcmalloc_path"])


@deploy("armada tcmalloc")
def apply(run: RoleRun):
    apt.packages(
        name=f"tcmalloc ({run.profile.tcmalloc_package})",
        packages=[run.profile.tcmalloc_package],
        _env={"DEBIAN_FRONTEND": "noninteractive"},
    )


ROLE = Role(
    name="tcmalloc",
    doc="tcmalloc, the allocator vLLM's processes are preloaded with (package from the profile)",
    preflight=preflight,
    apply=apply,
)

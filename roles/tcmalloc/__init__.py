"""The tcmalloc role: the allocator vLLM's CPU backend is preloaded with.

The package and library path come from the profile (distro and architecture).
"""

from pyinfra.api import deploy
from pyinfra.operations import apt

from armada.profile import Profile


@deploy("armada tcmalloc")
def apply(profile: Profile):
    if profile.tcmalloc_package is None:
        raise ValueError(f"{profile.host}: {profile.reasons['tcmalloc_path']}")
    apt.packages(
        name=f"tcmalloc ({profile.tcmalloc_package})",
        packages=[profile.tcmalloc_package],
        _env={"DEBIAN_FRONTEND": "noninteractive"},
    )

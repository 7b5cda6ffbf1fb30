"""The base role: egress proxy and CA certificates, packages, service user, directories.

Every other role stands on it: apt and pip reach the outside through
``armada_proxy`` and trust ``armada_ca_certs`` (enterprise labs, and the
local lab, need both).
"""

import os
from io import StringIO

from pyinfra import host
from pyinfra.api import deploy
from pyinfra.operations import apt, files, server
from pyinfra.operations.util import any_changed

from armada.errors import DataError
from armada.facts.system import Accounts, DpkgInterrupted
from armada.keys import PRIVATE_KEY, SECRET, file_owner, systemd_env_value
from armada.masking import has_credentials
from armada.parsers.system import Account
from armada.profile import Profile
from armada.role import Fleet, Role, RoleRun
from armada.role_support import template_path
from armada.serving import service_home
from roles.base.defaults import KEYS

CA_DIR = "/usr/local/share/ca-certificates/armada"


def packages_for(profile: Profile, roles: list[str]) -> list[str]:
    """OS packages the host's roles need (a pure decision, tested)."""
    wanted = ["ca-certificates", "curl"]
    if "vllm" in roles:
        wanted += ["python3-venv", "python3-dev", "libnuma-dev", "git"]
        if profile.vllm_strategy == "source" or profile.accelerator == "cpu":
            # a source build compiles vLLM; and vLLM's CPU backend compiles its
            # model graph with torch inductor at every start (g++ needed)
            wanted += ["build-essential"]
        if profile.vllm_strategy == "source":
            wanted += ["cmake"]
    return wanted


NOLOGIN = "/usr/sbin/nologin"


def account_ready(account: Account | None) -> bool:
    """A service account as the base role makes it (pure): in the group of its own name, no login shell."""
    return account is not None and account.in_own_group and account.shell == NOLOGIN


def service_user_keys(keys) -> list[str]:
    """Every key naming a service account, in one fixed order: armada_user first."""
    return ["armada_user", *(key.name for key in keys.values() if key.user_of)]


def user_key(keys, data, user: str) -> str:
    return next(name for name in service_user_keys(keys) if data[name] == user)


@deploy("armada base")
def apply(run: RoleRun):
    data, profile = run.data, run.profile
    proxy = data["armada_proxy"]
    tpl = template_path(__file__)

    # another apt/dpkg (unattended-upgrades, cloud-init) holding the lock: wait, then fail with apt's own message
    files.put(name="apt lock wait", src=StringIO(f'DPkg::Lock::Timeout "{data["armada_apt_lock_timeout"]}";\n'),
              dest="/etc/apt/apt.conf.d/80armada-lock", mode="644")
    apt_proxy = "/etc/apt/apt.conf.d/80armada-proxy"
    # a proxy URL with a password: its files are root's alone (systemd reads EnvironmentFile= as root)
    mode = "600" if has_credentials(proxy) else "644"
    if proxy:
        files.template(name="apt egress proxy", src=tpl("apt-proxy.conf.j2"), dest=apt_proxy, mode=mode, proxy=proxy)
    else:
        files.file(name="no apt proxy", path=apt_proxy, present=False)

    certs = []
    if data["armada_ca_certs"]:
        files.directory(name="CA directory", path=CA_DIR, mode="755")
    for path in data["armada_ca_certs"]:
        name = os.path.splitext(os.path.basename(path))[0] + ".crt"
        certs.append(files.put(name=f"CA certificate {name}", src=path, dest=f"{CA_DIR}/{name}", mode="644"))
    if certs:
        server.shell(name="update-ca-certificates", commands=["update-ca-certificates"], _if=any_changed(*certs))

    files.template(name="pip egress and CA", src=tpl("pip.conf.j2"), dest="/etc/pip.conf", mode=mode, proxy=proxy)
    files.directory(name="config dir", path=data["armada_config_dir"], mode="755")
    files.template(
        name="service egress env",
        src=tpl("egress.env.j2"),
        dest=f"{data['armada_config_dir']}/egress.env",
        mode=mode,
        proxy=systemd_env_value(proxy or ""),
        no_proxy=systemd_env_value(data["armada_no_proxy"]),
    )

    # a dpkg stopped midway (a host that lost power during an apt run) blocks
    # every apt until it is finished; finish it first
    if host.get_fact(DpkgInterrupted):
        server.shell(name="finish the interrupted dpkg run (dpkg --configure -a)",
                     commands=["dpkg --configure -a"], _env={"DEBIAN_FRONTEND": "noninteractive"})

    apt.packages(
        name="base packages",
        packages=packages_for(profile, data["armada_roles"]) + list(data["armada_packages"]),
        update=True,
        cache_time=3600,
        _env={"DEBIAN_FRONTEND": "noninteractive"},
    )

    # one system user per service: armada_user (vLLM, Dynamo) on every host,
    # and the user of each role's own service where that role runs (Key.user_of)
    homes = {data["armada_user"]: service_home(data)}
    for key in run.keys.values():
        if key.user_of and key.user_of in data["armada_roles"]:
            homes.setdefault(data[key.name], "/nonexistent")
    accounts = host.get_fact(Accounts, names=sorted(homes))
    for user, home in homes.items():
        if account_ready(accounts.get(user)):
            continue  # pyinfra's own operations would re-read every account of the host to find no change
        # the account's place among all of them: the same user has the same operation identity on every host
        host.loop_position.append(service_user_keys(run.keys).index(user_key(run.keys, data, user)))
        try:
            server.group(name=f"service group {user}", group=user, system=True)
            # an existing user keeps its home (usermod refuses while its services run:
            # older armada made the data root armada_user's home); the serving units
            # set HOME themselves (armada.serving.serving_env)
            server.user(name=f"service user {user}", user=user, group=user, system=True,
                        home=None if accounts.get(user) else home, shell=NOLOGIN, create_home=False,
                        ensure_home=False)
        finally:
            host.loop_position.pop()
    # secret and TLS key files (written by the operator's secret delivery,
    # checked before the run): 0600, owned by the service that reads them
    # itself, else by root (systemd hands them to a unit: LoadCredential).
    # pyinfra's host.loop gives each operation its key's place among all file
    # keys: hosts naming different files (a control plane, a serving host)
    # would otherwise number the two calls below in different orders, and
    # pyinfra refuses the run ("Cycle detected in operation ordering DAG")
    for key in host.loop(k for k in run.keys.values() if k.holds):
        if not data[key.name]:
            continue
        if key.holds in (SECRET, PRIVATE_KEY):
            owner = file_owner(key, run.keys, data)
            what = "secret" if key.holds == SECRET else "TLS key"
            files.file(name=f"{what} {key.name}: 0600 {owner}", path=data[key.name], user=owner, group=owner,
                       mode="600")
        else:
            files.file(name=f"TLS certificate {key.name}: 0644", path=data[key.name], mode="644")
    files.directory(name="install root", path=data["armada_root"], mode="755")
    # the data root holds each service's own folder (models, etcd, JetStream):
    # root's, so that no service user can rename another's
    files.directory(name="data root", path=data["armada_data_dir"], user="root", group="root", mode="755")
    user = data["armada_user"]
    files.directory(name=f"{user}'s home", path=homes[user], user=user, group=user, mode="750")


def fleet_checks(fleet: Fleet):
    """armada_control_plane names a host of the inventory."""
    names = {name for name, _ in fleet.hosts}
    for name, data in fleet.hosts:
        other = data["armada_control_plane"]
        if other and other not in names:
            yield DataError(name, "armada_control_plane", other, "no such host in the inventory")


def preflight(run: RoleRun):
    """A host whose OS has no apt (Amazon Linux, RHEL: dnf/yum) is refused by name before any change."""
    if run.profile.os is not None and run.profile.package_manager != "apt":
        yield DataError(run.host.name, "armada_roles", "base", run.profile.reasons["os_support"])


ROLE = Role(
    name="base",
    doc="egress proxy and CA certificates, OS packages, the service user, install and data roots",
    keys=KEYS,
    fleet_checks=fleet_checks,
    preflight=preflight,
    apply=apply,
)

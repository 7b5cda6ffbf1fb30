# pyinfra's CLI package gevent-monkey-patches the stdlib when first imported;
# done in the middle of a session (after threads and import locks exist) the
# import fails with "cannot release un-acquired lock". Patch first, as the
# pyinfra command does.
import pyinfra_cli  # noqa: F401  isort: skip

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "scenarios"))  # the shared testinfra checks


def pytest_ignore_collect(collection_path, config):
    # a scenario's verify step runs only inside its lifecycle (armada lab scenario NAME verify)
    if collection_path.name == "test_verify.py" and "ARMADA_SCENARIO" not in os.environ:
        return True
    return None
FIXTURES = os.path.join(ROOT, "tests", "fixtures")
HOSTS = os.path.join(FIXTURES, "hosts")
HOST_NAMES = sorted(d for d in os.listdir(HOSTS) if os.path.isdir(os.path.join(HOSTS, d)))


def host_dir(name: str) -> str:
    return os.path.join(HOSTS, name)


def fixture_text(*parts: str) -> str:
    with open(os.path.join(FIXTURES, *parts), encoding="utf-8") as handle:
        return handle.read()


def build_profile(host: str, facts, data: dict, model_bytes: int | None = None):
    """armada.profile.build_profile on complete data (every key's default filled in), as a deploy calls it."""
    from armada.profile import build_profile as build
    from armada.schema import with_defaults

    return build(host, facts, with_defaults(data), model_bytes)


def armada(*args: str, cwd: str = ROOT) -> subprocess.CompletedProcess:
    """Run the installed console script, as a user would."""
    exe = shutil.which("armada", path=os.path.dirname(sys.executable)) or shutil.which("armada")
    return subprocess.run([exe, *args], cwd=cwd, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="session")
def torch_venv(tmp_path_factory):
    """A real venv holding a real CPU torch (the 2.13.0 wheel this machine kind carries)."""
    venv = tmp_path_factory.mktemp("torchvenv") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    result = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", "torch==2.13.0"], capture_output=True, text=True, timeout=900
    )
    if result.returncode != 0:
        pytest.fail(f"could not install torch==2.13.0 into a test venv:\n{result.stderr[-2000:]}")
    return str(venv)


# ------------------------------------------------------------ the lab's order
# One lab per test session: brought up once (lab_hosts), converged once by the
# main deploy (deployed_lab), shared by every lab module. The modules run in
# this declared order, whatever order they were named in: first the harness on
# the bare lab (its down/up costs seconds there), then the first converge and
# the modules that change a deployed host and put it back, then those that
# leave a host changed (upgrade: both serving hosts on the upgraded install;
# Dynamo: armada-serve2 serving through Dynamo), and last those that make hosts
# new (scenarios: armada-cp and armada-serve2; cloud-init: armada-serve2),
# whose hosts nobody needs deployed after them. A lab module not listed runs
# after the restoring ones, before the first one that leaves a host changed.
LAB_ORDER = (
    "test_lab_harness",
    "test_lab_deploy",
    "test_lab_faults",
    "test_lab_tls",
    "test_lab_build",
    "test_lab_hub",
    "test_lab_nats_release",
    "test_lab_etcd_cluster",
    "test_lab_monitoring",
    # --- below: modules that leave hosts changed or new
    "test_lab_upgrade",
    "test_lab_dynamo",
    "test_lab_scenarios",
    "test_lab_cloudinit",
)
_UNLISTED = LAB_ORDER.index("test_lab_upgrade") - 0.5


def lab_rank(module_name: str, is_lab: bool) -> float:
    """Where a module's tests run: unit tests first (in collection order), then the lab modules in LAB_ORDER."""
    if not is_lab:
        return -1
    return LAB_ORDER.index(module_name) if module_name in LAB_ORDER else _UNLISTED


def pytest_collection_modifyitems(session, config, items):
    # a stable sort: inside a module (and among unit tests) the order stays as collected
    items.sort(key=lambda item: lab_rank(item.nodeid.split("::", 1)[0].rsplit("/", 1)[-1].removesuffix(".py"),
                                         item.get_closest_marker("lab") is not None))


# ---------------------------------------------------------- where time goes
# Wall time of each test module and of the lab's phases (lab up, first
# converge), printed at the end of every run (and written to
# $ARMADA_TEST_TIMES when set), so a change that slows the suite shows in its
# own run. pytest's --durations (pyproject) lists the slowest steps.
_TIMES: dict[str, float] = {}
_MODULE_START: dict[str, float] = {}


@contextlib.contextmanager
def timed_phase(name: str):
    started = time.monotonic()
    try:
        yield
    finally:
        _TIMES[f"phase: {name}"] = _TIMES.get(f"phase: {name}", 0.0) + time.monotonic() - started


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    module = item.nodeid.split("::", 1)[0]
    started = time.monotonic()
    yield
    _TIMES[f"module: {module}"] = _TIMES.get(f"module: {module}", 0.0) + time.monotonic() - started


def pytest_terminal_summary(terminalreporter):
    if not _TIMES:
        return
    terminalreporter.section("wall time per module and lab phase (s)")
    for name, seconds in _TIMES.items():
        terminalreporter.write_line(f"{seconds:8.1f}  {name}")
    path = os.environ.get("ARMADA_TEST_TIMES")
    if path:
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(_TIMES, handle, indent=1)


LAB_UP_TIMINGS: dict = {}  # what the session's lab.up() returned
_EARLY_UP: dict = {}


def pytest_collection_finish(session):
    """When lab tests will run, start bringing the lab up (building the root
    filesystem caches the first time, minutes) in another process while the
    unit tests run; the lab_hosts fixture waits for it."""
    wanted = any(item.get_closest_marker("lab") for item in session.items)
    if not wanted or os.geteuid() != 0 or session.config.option.collectonly:
        return
    exe = shutil.which("armada", path=os.path.dirname(sys.executable))
    log = open(os.path.join(session.config.rootpath, ".lab-up.log"), "w")  # noqa: SIM115 (kept open for the child)
    _EARLY_UP.update(started=time.monotonic(), log=log.name,
                     process=subprocess.Popen([exe, "lab", "up"], stdout=log, stderr=subprocess.STDOUT))


@pytest.fixture(scope="session")
def lab_hosts():
    """The local lab, up for the whole session, down at its end."""
    from armada.lab import hosts as lab

    if _EARLY_UP:
        # what the unit tests did not hide of it
        with timed_phase("lab up, waited for (started with the unit tests; .lab-up.log)"):
            _EARLY_UP["process"].wait()
        _TIMES["phase: lab up, all of it (in its own process)"] = time.monotonic() - _EARLY_UP["started"]
    with timed_phase("lab up (root filesystem caches built when missing)"):
        LAB_UP_TIMINGS.update(lab.up())  # everything up already unless the early start failed: then it says why
    yield lab
    if os.environ.get("ARMADA_LAB_KEEP"):
        return  # a developer's next run starts from the deployed lab (its first converge is then a rerun)
    with timed_phase("lab down"):
        lab.down()


def run_main_deploy(report, *extra, env=None) -> tuple[subprocess.CompletedProcess, str]:
    """``pyinfra -y inventories/local.py deploys/llm.py`` on the lab, its health report to ``report``."""
    pyinfra = os.path.join(os.path.dirname(sys.executable), "pyinfra")
    result = subprocess.run(
        [pyinfra, "-y", "inventories/local.py", "deploys/llm.py", "--data", f"armada_health_report={report}", *extra],
        cwd=ROOT, capture_output=True, text=True, timeout=2400, env=env,
    )
    return result, result.stdout + result.stderr


@pytest.fixture(scope="session")
def deployed_lab(lab_hosts, tmp_path_factory):
    """The lab converged by the main deploy, from bare hosts: the first
    converge, run once per session; every lab module that needs deployed hosts
    starts from it. Returns (health report, pyinfra's output)."""
    from armada.lab.assets import ensure_assets

    ensure_assets()
    report = tmp_path_factory.mktemp("health") / "first.json"
    with timed_phase("first converge (deploys/llm.py on the bare lab)"):
        result, output = run_main_deploy(report)
    print(output[-6000:])
    assert result.returncode == 0, output[-8000:]
    return json.loads(report.read_text()), output


@pytest.fixture(scope="session")
def testinfra_host(lab_hosts):
    """testinfra hosts over SSH (paramiko), with the lab's key and known_hosts."""
    import testinfra

    cache = {}

    def get(lab_host):
        if lab_host.name not in cache:
            cache[lab_host.name] = testinfra.get_host(
                f"paramiko://root@{lab_host.address}",
                ssh_identity_file=lab_hosts.key_path(),
            )
        return cache[lab_host.name]

    return get

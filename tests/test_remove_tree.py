"""The lab deletes host root filesystems in the test process, which runs
under gevent's monkey patches (pyinfra's CLI package, imported by conftest).
gevent's os.close defers closing a directory fd to its loop, so a
shutil.rmtree in a thread held every folder of a served host open and the CI
session died of EMFILE. armada.lab.hosts.remove_tree must delete a tree with
far more folders than the process may open files, from a thread, in exactly
that setting."""

import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import pyinfra_cli  # gevent's patches, as in the test session and pyinfra
    import concurrent.futures, os, resource, sys
    from armada.lab.hosts import remove_tree

    root = sys.argv[1]
    for i in range(1500):
        os.makedirs(f"{root}/d{i}/sub", exist_ok=True)
        open(f"{root}/d{i}/sub/file", "w").close()
    os.symlink("/", f"{root}/link-to-root")  # never followed
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(remove_tree, root).result()
    remove_tree(root)  # gone already: nothing to do
    print(len(os.listdir("/proc/self/fd")))
""")


def test_remove_tree_deletes_a_tree_larger_than_the_fd_limit_under_gevent(tmp_path):
    root = tmp_path / "rootfs"
    result = subprocess.run([sys.executable, "-c", SCRIPT, str(root)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert not root.exists()
    assert int(result.stdout.split()[-1]) < 50  # no folder fd left behind
    assert os.path.exists("/etc/hostname") or os.path.exists("/etc/os-release")  # the symlink's target untouched

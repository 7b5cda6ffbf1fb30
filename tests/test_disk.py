"""The model cache's disk, read before anything changes (real df/findmnt outputs)."""

from armada.parsers.disk import disk_problem, parse_disk_space
from conftest import fixture_text


def space(name):
    return parse_disk_space(fixture_text("disk", name))


def test_parses_the_nearest_existing_folder():
    root = space("root-fs.txt")
    assert root.existing == "/var/lib" and root.available_bytes == 71484296 * 1024 and not root.read_only
    tiny = space("tmpfs-64k.txt")
    assert (tiny.existing, tiny.available_bytes, tiny.read_only) == ("/tmp/armada-tiny", 64 * 1024, False)
    assert space("tmpfs-ro.txt").read_only


def test_problems_name_what_is_free_and_what_is_needed():
    path = "/tmp/armada-tiny/models/tiny"
    assert disk_problem(space("tmpfs-64k.txt"), path, 256 * 1024) == (
        f"64 KiB free at /tmp/armada-tiny, 256 KiB needed ({path})")
    assert disk_problem(space("tmpfs-64k.txt"), path, 32 * 1024) is None
    assert disk_problem(space("tmpfs-64k.txt"), path, None) is None  # the model is there already
    assert disk_problem(space("tmpfs-ro.txt"), path, None) == "/tmp/armada-tiny is on a read-only filesystem"
    assert disk_problem(space("root-fs.txt"), "/var/lib/armada/models/tiny", 10 * 2**30) is None
    assert parse_disk_space("") is None and disk_problem(None, path, 1) is None

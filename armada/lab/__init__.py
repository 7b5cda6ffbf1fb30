"""The local lab: real Debian hosts (systemd, sshd) booted with systemd-nspawn,
each in its own network namespace, for armada's first run and its tests."""

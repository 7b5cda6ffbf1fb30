"""Data keys: how a role declares one (:class:`Key`) and the value checks
keys share. Below every role: roles import this, never the schema that
gathers them (armada.schema, through armada.registry).
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from packaging.requirements import InvalidRequirement, Requirement
from packaging.version import InvalidVersion, Version

from armada.errors import DataError

# what a key that names a FILE ON THE HOST holds: a secret (0600 for the
# service user, its value never passes through armada), or a TLS file of a
# PEM kind (a key is a secret too; certificates are 0644)
SECRET, CERTIFICATE, PRIVATE_KEY = "secret", "certificate", "key"

MAX_TEXT, MAX_URL = 4096, 2048
_CONTROL = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]")


@dataclass(frozen=True)
class Key:
    name: str
    types: type | tuple[type, ...]
    default: Any
    doc: str
    nullable: bool = False
    choices: tuple[Any, ...] | None = None
    # returns an error message for a bad value, None when fine
    check: Callable[[Any], str | None] | None = None
    # a FILE ON THE HOST: SECRET, CERTIFICATE or PRIVATE_KEY (checked before any
    # change, handed to its owner by the base role: file_owner); None for a value
    holds: str | None = None
    # a service user's name: the role whose services run as it (the base role
    # creates it on hosts running that role); None for other keys
    user_of: str | None = None
    # a secret or key file that a service reads itself: the key naming its user
    # (that user owns it where its role runs; elsewhere root does, and services
    # get it through systemd's LoadCredential)
    reader: str | None = None

    def type_name(self) -> str:
        types = self.types if isinstance(self.types, tuple) else (self.types,)
        names = " or ".join(t.__name__ for t in types)
        return f"{names} or None" if self.nullable else names

    def validate(self, host: str, value: Any) -> DataError | None:
        if value is None:
            return None if self.nullable else DataError(host, self.name, value, f"must be of type {self.type_name()}")
        types = self.types if isinstance(self.types, tuple) else (self.types,)
        # bool is an int subclass in Python; a port of True is a mistake
        if isinstance(value, bool) and bool not in types:
            return DataError(host, self.name, value, f"must be of type {self.type_name()}, not a bool")
        if float in types and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, types):
            return DataError(host, self.name, value, f"must be of type {self.type_name()}, not {type(value).__name__}")
        if self.choices is not None and value not in self.choices:
            allowed = ", ".join(repr(c) for c in self.choices)
            return DataError(host, self.name, value, f"must be one of {allowed}")
        problem = plain_values(value)
        if problem:
            return DataError(host, self.name, value, problem)
        if self.check is not None:
            problem = self.check(value)
            if problem:
                return DataError(host, self.name, value, problem)
        return None


# -- reusable checks ---------------------------------------------------------


def port(value: int) -> str | None:
    return None if 1 <= value <= 65535 else "must be a TCP port, 1-65535"


def at_least(minimum: int | float) -> Callable[[Any], str | None]:
    def check(value):
        return None if value >= minimum else f"must be >= {minimum}"

    return check


def fraction(value: float) -> str | None:
    return None if 0 < value <= 1 else "must be in (0, 1]"


# PEP 508 less markers and quotes: a name, extras, version specifiers or `name @ URL`
_REQUIREMENT_CHARS = re.compile(r"[A-Za-z0-9._\-\[\],=<>!~*+ @:/%?&#]+")


def requirement(value: str) -> str | None:
    allowed = "is not a pip requirement (PEP 508: name, extras, versions or 'name @ URL'; no ';' markers or quotes)"
    if not _REQUIREMENT_CHARS.fullmatch(value):
        return allowed
    try:
        Requirement(value)
    except InvalidRequirement:
        return allowed
    return None


def package_name(value: str) -> str | None:
    """A Python project name (PEP 508), as pip and the exclude lists name one."""
    if re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9._-]{0,198}[A-Za-z0-9])?", value):
        return None
    return "must be a Python package name: letters, digits and . _ - inside"


def os_package(value: str) -> str | None:
    """A Debian package, optionally :arch and =version (apt's own syntax)."""
    if re.fullmatch(r"[a-z0-9][a-z0-9+.-]+(:[a-z0-9-]+)?(=[A-Za-z0-9.+~:-]+)?", value):
        return None
    return "must be a Debian package name (lowercase letters, digits, + . -), optionally :arch and =version"


def version(value: str) -> str | None:
    if re.fullmatch(r"[A-Za-z0-9.+!_-]{1,64}", value):
        try:
            Version(value)
            return None
        except InvalidVersion:
            pass
    return "is not a version number (PEP 440), e.g. '2.13.0'"


def list_of(check: Callable[[Any], str | None], what: str) -> Callable[[Any], str | None]:
    """Every item a string that ``check`` accepts; the first bad one is named."""

    def checked(value):
        for item in value:
            problem = check(item) if isinstance(item, str) else f"must be {what}"
            if problem:
                return f"item {item!r}: {problem}" if isinstance(item, str) else problem
        return None

    return checked


def host_address(value: str) -> str | None:
    """An address a service binds or a client connects to: IPv4, IPv6 or a DNS name, never a URL."""
    try:
        ipaddress.ip_address(value)
        return None
    except ValueError:
        pass
    label = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    if len(value) <= 253 and re.fullmatch(rf"{label}(\.{label})*\.?", value):
        return None
    return "must be an IP address (IPv4 or IPv6) or a DNS name, not a URL"


def host_list(value: str) -> str | None:
    """no_proxy: hosts, .domains, addresses or CIDRs, comma separated (or '*')."""
    for entry in value.split(","):
        entry = entry.strip()
        if not entry:
            continue
        if entry == "*" or not host_address(entry.lstrip(".").lstrip("*.")):
            continue
        try:
            ipaddress.ip_network(entry, strict=False)
            continue
        except ValueError:
            pass
        host, _, port_text = entry.rpartition(":")
        if host and port_text.isdigit() and not host_address(host.lstrip(".")):
            continue
        return f"entry {entry!r} must be a host, .domain, address or CIDR (comma-separated)"
    return None


def name(value: str) -> str | None:
    """A plain name (a user, a token, a served model): no path, no shell."""
    if re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}", value) and ".." not in value:
        return None
    return "must be a name of letters, digits and . _ - (starting with a letter or digit, no '..')"


def group_name(value: str) -> str | None:
    """An inventory group: a Python identifier, as inventory files name one."""
    return None if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,127}", value) else "must be an inventory group name " \
        "(letters, digits and _, not starting with a digit)"


def inventory_host(value: str) -> str | None:
    """An inventory host's name (an address, a DNS name or pyinfra's @connector/name)."""
    if re.fullmatch(r"@?[A-Za-z0-9][A-Za-z0-9._:/@-]{0,252}", value) and ".." not in value:
        return None
    return "must be an inventory host name (letters, digits and . _ : / @ -, no '..')"


def git_ref(value: str) -> str | None:
    """A commit id or a ref name git check-ref-format accepts, of plain characters."""
    if re.fullmatch(r"[0-9a-f]{7,40}", value):
        return None
    plain = re.fullmatch(r"[A-Za-z0-9._/+-]{1,200}", value)
    parts = value.split("/")
    if (plain and not value.startswith("-") and ".." not in value and "//" not in value and not value.endswith(("/", "."))
            and not any(p.startswith(".") or p.endswith(".lock") for p in parts)):
        return None
    return "must be a commit id or a tag/branch name (letters, digits and . _ / + -, as git check-ref-format allows)"


def model_id(value: str) -> str | None:
    part = r"[A-Za-z0-9]([A-Za-z0-9._-]{0,94}[A-Za-z0-9])?"
    if re.fullmatch(rf"{part}/{part}", value) and ".." not in value:
        return None
    return "must look like 'org/name' (letters, digits and . _ -, no '..')"


def glob_pattern(value: str) -> str | None:
    """A file name pattern (fnmatch) inside a model repository: plain characters and * ? only."""
    if re.fullmatch(r"[A-Za-z0-9._/*?-]{1,200}", value) and ".." not in value and not value.startswith("/"):
        return None
    return "must be a relative file pattern of letters, digits and . _ / * ? - (no '..')"


def env_name(value: str) -> str | None:
    return None if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,127}", value) else "must be an environment variable name"


def env_map(value: dict) -> str | None:
    """Environment variables: names as a shell takes them, string values (quoted where used)."""
    for key, item in value.items():
        if not isinstance(key, str) or env_name(key) or not isinstance(item, str):
            return "must map environment variable names ([A-Za-z_][A-Za-z0-9_]*) to strings"
    return None


def strings(value: list) -> str | None:
    return None if all(isinstance(x, str) for x in value) else "must be a list of strings"


def systemd_env_value(value: str) -> str:
    """A value as a systemd EnvironmentFile line holds it (also read by
    :func:`armada.envfile.parse`): plain values as they are, others in double
    quotes with systemd's backslash escapes. Never a line break."""
    if "\n" in value or "\r" in value or "\0" in value:
        raise ValueError(f"an environment value may not hold a line break: {value!r}")
    if not re.search(r"""[\s"'\\`$#;]""", value):
        return value
    return '"' + re.sub(r'(["\\`$])', r"\\\1", value) + '"'


# characters a URL may hold: RFC 3986's less those a shell or a unit file reads ($ ( ) ! * ; ' and
# whitespace, quotes, backslash): percent-encode them (a password's %24 for $)
_URL_CHARS = re.compile(r"[A-Za-z0-9._~:/?#\[\]@&+,=%-]+")


def url(value: str, schemes: tuple[str, ...] = ("http", "https", "file")) -> str | None:
    allowed = "an " + "/".join(schemes) + " URL of at most 2048 characters, without spaces, quotes or backslashes"
    if len(value) > MAX_URL or not _URL_CHARS.fullmatch(value):
        return f"must be {allowed}"
    parsed = urlparse(value)
    try:
        hostname = parsed.hostname
        parsed.port  # noqa: B018  (raises on a port that is not a number)
    except ValueError:
        return f"must be {allowed}"
    if parsed.scheme not in schemes or (parsed.scheme != "file" and not (hostname and host_address(hostname) is None)):
        return f"must be {allowed}"
    return None


def git_url(value: str) -> str | None:
    """A repository git clones: an http(s)://, ssh://, git:// (git daemon: mirrors, the lab's) or file:// URL."""
    return url(value, ("https", "http", "ssh", "git", "file"))


def url_or_dir(value: str) -> str | None:
    """A folder on the control machine or a URL (wheelhouses, models)."""
    if re.match(r"^[a-z]+://", value):
        return url(value)
    if local_path(value):
        return local_path(value)
    if not os.path.isdir(os.path.expanduser(value)):
        return "is neither a URL nor an existing folder on the control machine"
    return None


_PATH_CHARS = re.compile(r"[A-Za-z0-9._/@+=,-]+")


def _dotdot(value: str) -> bool:
    return ".." in value.split("/")


def absolute_path(value: str) -> str | None:
    if not value.startswith("/") or _dotdot(value) or not _PATH_CHARS.fullmatch(value):
        return "must be an absolute path on the host without '..', of letters, digits and . _ / @ + = , -"
    return None


def relative_path(value: str) -> str | None:
    """A path inside a folder (a repository's file): never out of it."""
    if value.startswith("/") or _dotdot(value) or not _PATH_CHARS.fullmatch(value):
        return "must be a relative path without '..', of letters, digits and . _ / @ + = , -"
    return None


def local_path(value: str) -> str | None:
    """A file or folder on the control machine (relative, absolute or ~/...)."""
    if _dotdot(value) or not re.fullmatch(r"~?[A-Za-z0-9._/@+=,-]+", value):
        return "must be a path without '..', of letters, digits and ~ . _ / @ + = , -"
    return None


def secret_path(value: str) -> str | None:
    """A secret file's path: absolute, and plain enough to sit unquoted in unit files and scripts."""
    if not value.startswith("/") or _dotdot(value):
        return "must be an absolute path on the host without '..'"
    return None if re.fullmatch(r"[A-Za-z0-9._/@+-]+", value) else "may hold only letters, digits and . _ / @ + -"


def file_owner(key: Key, keys: dict[str, Key], data: dict[str, Any]) -> str:
    """Who owns the file that ``key`` names on a host with ``data``: the user of
    the service that reads it itself when that service runs there, else root
    (least privilege: no other service user can read it)."""
    reader = keys.get(key.reader) if key.reader else None
    if reader is not None and reader.user_of in data["armada_roles"]:
        return data[reader.name]
    return "root"


def file_reader(key: Key, keys: dict[str, Key], data: dict[str, Any]) -> str:
    """The user that must reach the file ``key`` names (every folder above it
    must let that user through): its owner; for a certificate (0644, read by
    services directly), the serving user where no service of its own runs."""
    owner = file_owner(key, keys, data)
    return data["armada_user"] if owner == "root" and key.holds == CERTIFICATE else owner


def tls_keys(service: str, what: str, cert_note: str, ca_note: str) -> tuple["Key", ...]:
    """The three TLS file keys of ``service`` (nats, etcd): certificate, key, CA."""
    return (
        Key(f"{service}_tls_cert_file", str, None, f"PEM certificate FILE ON THE HOST that {what} presents "
            f"{cert_note}", nullable=True, check=secret_path, holds=CERTIFICATE, reader=f"{service}_service_user"),
        Key(f"{service}_tls_key_file", str, None, f"PEM private key FILE ON THE HOST of {service}_tls_cert_file; "
            f"armada makes it 0600, owned by {service}_service_user (one key file per service)", nullable=True,
            check=secret_path, holds=PRIVATE_KEY, reader=f"{service}_service_user"),
        Key(f"{service}_tls_ca_file", str, None, f"PEM CA FILE ON THE HOST that clients check a TLS {service}'s "
            f"certificate against {ca_note}", nullable=True, check=secret_path, holds=CERTIFICATE,
            reader=f"{service}_service_user"),
    )


def plain_values(value: Any) -> str | None:
    """What every string value holds, alone or inside a list or a dict: no
    line break, NUL or other control character (a value never ends a line of
    a shell, a unit, an env file or cloud-config), and at most 4096 characters."""
    if isinstance(value, str):
        if len(value) > MAX_TEXT:
            return f"must be at most {MAX_TEXT} characters"
        if _CONTROL.search(value):
            return "may not hold a line break, NUL or other control character"
        return None
    if isinstance(value, dict):
        return next((p for p in map(plain_values, [*value.keys(), *value.values()]) if p), None)
    if isinstance(value, (list, tuple)):
        return next((p for p in map(plain_values, value) if p), None)
    return None


def identifier(value: str) -> str | None:
    return None if re.fullmatch(r"[a-z_][a-z0-9_-]{0,31}", value) else "must be a valid user/group name"



"""Data keys: how a role declares one (:class:`Key`) and the value checks
keys share. Below every role: roles import this, never the schema that
gathers them (armada.schema, through armada.registry).
"""

from __future__ import annotations

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
    # change, handed to the service user by the base role); None for a value
    holds: str | None = None

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


def requirement(value: str) -> str | None:
    try:
        Requirement(value)
    except InvalidRequirement as exc:
        return f"is not a pip requirement: {exc}"
    return None


def version(value: str) -> str | None:
    try:
        Version(value)
    except InvalidVersion:
        return "is not a version number (PEP 440), e.g. '2.13.0'"
    return None


def url(value: str) -> str | None:
    parsed = urlparse(value)
    if parsed.scheme in ("http", "https", "file") and (parsed.netloc or parsed.scheme == "file"):
        return None
    return "must be an http(s):// or file:// URL"


def url_or_dir(value: str) -> str | None:
    """A folder on the control machine or a URL (wheelhouses, models)."""
    if re.match(r"^[a-z]+://", value):
        return url(value)
    if not os.path.isdir(os.path.expanduser(value)):
        return "is neither a URL nor an existing folder on the control machine"
    return None


def absolute_path(value: str) -> str | None:
    return None if value.startswith("/") else "must be an absolute path on the host"


def secret_path(value: str) -> str | None:
    """A secret file's path: absolute, and plain enough to sit unquoted in unit files and scripts."""
    if not value.startswith("/"):
        return "must be an absolute path on the host"
    return None if re.fullmatch(r"[A-Za-z0-9._/@+-]+", value) else "may hold only letters, digits and . _ / @ + -"


def tls_keys(service: str, what: str, cert_note: str, ca_note: str) -> tuple["Key", ...]:
    """The three TLS file keys of ``service`` (nats, etcd): certificate, key, CA."""
    return (
        Key(f"{service}_tls_cert_file", str, None, f"PEM certificate FILE ON THE HOST that {what} presents "
            f"{cert_note}", nullable=True, check=secret_path, holds=CERTIFICATE),
        Key(f"{service}_tls_key_file", str, None, f"PEM private key FILE ON THE HOST of {service}_tls_cert_file; "
            "armada makes it 0600, owned by the service user", nullable=True, check=secret_path, holds=PRIVATE_KEY),
        Key(f"{service}_tls_ca_file", str, None, f"PEM CA FILE ON THE HOST that clients check a TLS {service}'s "
            f"certificate against {ca_note}", nullable=True, check=secret_path, holds=CERTIFICATE),
    )


def identifier(value: str) -> str | None:
    return None if re.fullmatch(r"[a-z_][a-z0-9_-]{0,31}", value) else "must be a valid user/group name"



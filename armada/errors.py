"""armada's errors, below everything else: a bad data value (:class:`DataError`,
naming host, key and value) and the error that stops a pyinfra run before
any host is changed (:class:`ArmadaDataError`)."""

from __future__ import annotations

from typing import Any

from pyinfra.api.exceptions import PyinfraError

from armada.masking import mask_url


class DataError(ValueError):
    """A bad value in inventory data, naming host, key and value."""

    def __init__(self, host: str, key: str, value: Any, message: str):
        self.host, self.key, self.value, self.message = host, key, value, message
        # a URL's password never reaches a terminal or a log
        super().__init__(mask_url(f"host {host!r}: {key} = {value!r}: {message}"))


class ArmadaDataError(PyinfraError):
    """Bad inventory data: the run stops before any host is changed."""


def stop_on(errors: list, what: str) -> None:
    """Raise one ArmadaDataError listing every error (nothing has changed yet)."""
    if errors:
        lines = "\n".join(f"  - {e}" for e in errors)
        raise ArmadaDataError(f"{len(errors)} {what}; nothing was changed on any host:\n{lines}")

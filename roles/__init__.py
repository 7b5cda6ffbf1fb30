"""armada's roles: one sub-package per concern, Ansible-style.

Each role has ``defaults.py`` (every data key it reads, typed, with its
default and what it is for) and, once it changes hosts, a ``@deploy``
function in ``__init__.py`` with its templates beside it.
"""

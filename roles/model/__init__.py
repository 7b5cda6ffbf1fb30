"""The model role: which model a host serves and where its files live.

Its data keys are in :mod:`roles.model.defaults`.
"""

"""Revision files of the voiceprint store: a package, so that setuptools ships them like any module.

Alembic loads them by path (it skips this file); see :mod:`voiceprints.store.migrate`.
"""

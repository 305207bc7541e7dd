"""Alembic migrations of the voiceprint store, shipped inside the package.

They run programmatically (see :mod:`voiceprints.store.migrate`); the package
marker makes setuptools ship ``env.py`` along with the revision files.
"""

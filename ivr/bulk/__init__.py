"""Bulk enrolment from recorded calls: a manifest of accounts and recordings in, voiceprints out.

``manifest.py`` reads the CSV, ``progress.py`` remembers what a run has done
so an interrupted one resumes, ``enrol.py`` enrols one row (consent, audio,
voiceprint, audit, notice). The command is ``ivr enroll --manifest``.
"""

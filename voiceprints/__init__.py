"""Biometric core of the voice-authentication engine: audio in, decisions out.

Nothing in this package knows about telephony; ``ivr`` builds on it.
"""

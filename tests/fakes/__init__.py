"""Loopback protocol peers for tests (fake Twilio API, ...)."""

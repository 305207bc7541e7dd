"""The lab fixtures (``asterisk``, ``caller_speech``) live in tests/conftest.py, shared with tests/security."""

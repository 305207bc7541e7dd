"""One-time codes keyed in on the phone keypad: the step-up factor when the voice is not enough.

Import from the submodules (``ivr.otp.service``, ``ivr.otp.backends``...):
this package file stays empty so that reading the settings never loads the
Twilio client library.
"""

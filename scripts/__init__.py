"""Set-up, the lab Asterisk and benchmarks; a package so that tests and scripts share scripts.lab.

Not installed with the engine (setup.cfg ships only ``ivr`` and ``voiceprints``).
"""

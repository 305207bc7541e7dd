"""The lab Asterisk from Python: control (asterisk.py), who stops it (lifetime.py), sipp callers (callers.py).

Shared by the lab tests, the phone demo and the load bench; the shell scripts
beside these files do the work on the chroot.
"""

"""Accuracy evaluation on labelled recordings (``ivr evaluate``, ``ivr calibrate``)."""

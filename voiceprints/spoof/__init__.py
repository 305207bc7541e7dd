"""Synthetic-voice risk: the AASIST countermeasure, with this project's own model code."""

"""Call flows, written once against :mod:`ivr.call` and run over any transport."""

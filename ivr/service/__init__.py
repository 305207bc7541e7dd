"""The worker behind ``ivr serve``: the call runner, health and metrics around the transports and one engine."""

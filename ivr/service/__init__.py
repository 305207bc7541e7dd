"""The telephony worker behind ``ivr serve``: AudioSocket, FastAGI and AMI around one engine."""

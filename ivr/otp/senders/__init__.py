"""Ways of getting a one-time code to the caller: e-mail (``smtp``), SMS (``twilio_sms``), voice call
(``twilio_voice``). Import from the submodules; the Twilio ones load the Twilio client library."""

"""The TwiML the Twilio transport answers with, built with the ``twilio`` library."""

from __future__ import annotations

from typing import Mapping
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from twilio.twiml.voice_response import Connect, VoiceResponse

from ivr.call import FlowResult
from ivr.transports.results import MAX_VALUE, result_parameters

__all__ = ["MAX_VALUE", "connect_stream", "continue_with_result", "result_parameters"]


def connect_stream(stream_url: str, action_url: str, parameters: Mapping[str, str]) -> str:
    """``<Connect action=…><Stream url=…>`` with ``<Parameter>``s: a bidirectional Media Stream.

    When the stream ends (the worker closes it after the flow), Twilio
    requests ``action_url`` and continues the call with the TwiML it returns.
    """
    response = VoiceResponse()
    connect = Connect(action=action_url, method="POST")
    stream = connect.stream(url=stream_url)
    for name, value in parameters.items():
        stream.parameter(name=name, value=value)
    response.append(connect)
    return str(response)


def continue_with_result(result_url: str, method: str, result: FlowResult) -> str:
    """``<Redirect>`` to the admin's URL with the result as query parameters (kept after its own)."""
    parts = urlsplit(result_url)
    query = parse_qsl(parts.query, keep_blank_values=True) + list(result_parameters(result).items())
    response = VoiceResponse()
    response.redirect(urlunsplit(parts._replace(query=urlencode(query))), method=method)
    return str(response)

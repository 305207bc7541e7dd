"""Who does the caller say they are? From the dialplan, the caller ID or the keypad."""

from __future__ import annotations

from ivr.flows.callio import CallIO
from ivr.flows.config import FlowConfig


async def claimed_account(io: CallIO, config: FlowConfig) -> str | None:
    """The claimed account, or None when the caller never typed one.

    Precedence: an account the dialplan already knows (VOICEAUTH_ACCOUNT), then
    the caller ID when the dialplan (or the worker's default) says to trust it,
    then the keypad, with re-prompts.
    """
    params = io.call.info.params
    if params.get("account"):
        return params["account"]
    claim = params.get("claim") or config.claim
    if claim == "callerid" and io.call.info.caller_id:
        return "".join(ch for ch in io.call.info.caller_id if ch.isdigit()) or None
    for attempt in range(config.input_attempts):
        await io.play("enter-account" if attempt == 0 else "enter-account-again")
        digits = await io.read_digits(config.account_max_digits, config.first_digit_timeout_s,
                                      config.next_digit_timeout_s)
        if digits:
            return digits
    return None

"""Admin commands of the fallback factors: customers, consent, locks, audit, purge.

All of them work on the IVR database, which is the voiceprint store's
database unless configured otherwise (``VOICEAUTH_STORE__URL``).
"""

from __future__ import annotations

import functools
import json
import sys
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional, TypeVar

import click
import typer

from ivr.cli.context import DatabaseUnavailableError, ctx_of
from ivr.cli.output import ExitCode, emit, reports_errors

if TYPE_CHECKING:
    from ivr.db.engine import Database
    from ivr.secrets import ServerSecrets

F = TypeVar("F", bound=Callable[..., Any])
JSON = typer.Option(False, "--json", help="Print the result as JSON.")

customers_app = typer.Typer(help="Customer contact data and knowledge answers.", no_args_is_help=True)
consent_app = typer.Typer(help="Consent to voice authentication, and opt-out.", no_args_is_help=True)
locks_app = typer.Typer(
    help="Accounts and caller numbers locked after too many attempts.", no_args_is_help=True
)
audit_app = typer.Typer(help="The audit log of authentication attempts.", invoke_without_command=True)


def register(app: typer.Typer) -> None:
    app.add_typer(customers_app, name="customers")
    app.add_typer(consent_app, name="consent")
    app.add_typer(locks_app, name="locks")
    app.add_typer(audit_app, name="audit")
    app.command("purge")(purge)


# --- plumbing ----------------------------------------------------------------
class UnknownAccountError(Exception):
    code = "unknown_account"


def _problem_code(exc: Exception) -> ExitCode | None:
    """The exit code for errors of the fallback side; None for anything reports_errors handles."""
    from sqlalchemy.exc import SQLAlchemyError

    from ivr.audit.log import AuditUnavailableError
    from ivr.consent.bulk import ConsentFileError
    from ivr.knowledge.importer import CsvImportError
    from ivr.limits.errors import LimitsUnavailableError
    from ivr.policy.schema import PolicyError
    from ivr.secrets import SecretsError, SharedSecretsNotConfiguredError
    from voiceprints.errors import SharedKeysNotConfiguredError

    if isinstance(exc, (SharedSecretsNotConfiguredError, SharedKeysNotConfiguredError)):
        return ExitCode.ERROR  # this host is not set up for a shared database: not the input's fault
    if isinstance(exc, (UnknownAccountError, CsvImportError, ConsentFileError, PolicyError, SecretsError,
                        ValueError, OSError)):
        return ExitCode.BAD_INPUT
    if isinstance(
        exc, (DatabaseUnavailableError, LimitsUnavailableError, AuditUnavailableError, SQLAlchemyError)
    ):
        return ExitCode.ERROR
    return None


def fallback_errors(fn: F) -> F:
    """One clear line (or JSON) and a stable exit code for the fallback side's typed errors."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (typer.Exit, typer.Abort, click.ClickException):
            raise
        except Exception as exc:
            code = _problem_code(exc)
            if code is None:
                raise
            message = str(exc)
            if isinstance(exc, OSError) and exc.filename:
                message = f"{exc.filename}: {exc.strerror}"
            if kwargs.get("as_json"):
                typer.echo(
                    json.dumps(
                        {
                            "error": getattr(exc, "code", "bad_input"),
                            "message": message,
                            "exit_code": int(code),
                        }
                    )
                )
            else:
                typer.echo(f"error: {message}", err=True)
            raise typer.Exit(int(code)) from None

    return reports_errors(wrapper)  # type: ignore[return-value]


def _database(ctx: typer.Context) -> Database:
    return ctx_of(ctx).database()


def _secrets(ctx: typer.Context) -> ServerSecrets:
    return ctx_of(ctx).secrets()


def _customer(db: Database, account: str):  # type: ignore[no-untyped-def]
    from ivr.db.customers import CustomerDirectory

    record = CustomerDirectory(db).get(account)
    if record is None:
        raise UnknownAccountError(
            f"no customer with account {account}; add one with "
            f"'ivr customers set {account} --phone ...' or 'ivr customers import'"
        )
    return record


def _when(value: Optional[str], *, end_of_day: bool = False) -> datetime | None:
    """``2025-06-01`` (a whole day) or an ISO date-time; times without a zone are UTC."""
    if value is None:
        return None
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            start = datetime.combine(day, time.min, tzinfo=timezone.utc)
            return start + timedelta(days=1) if end_of_day else start
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a date (YYYY-MM-DD) or ISO date-time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _audit_admin(
    ctx: typer.Context, flow: str, identity: str | None, reason: str, caller_hash: str | None = None
) -> None:
    ctx_of(ctx).audit(flow, identity, reason, caller_hash=caller_hash)


# --- customers ---------------------------------------------------------------
@customers_app.command("import")
@fallback_errors
def customers_import(
    ctx: typer.Context,
    csv_file: Path = typer.Argument(
        ...,
        help="CSV with a header line: external_id,phone,email,preferred_channel,language, pin (4-8 digits: "
             "what proves the account on the enrolment line without a one-time code) and knowledge answer "
             "columns (docs/admins.md).",
    ),
    as_json: bool = JSON,
) -> None:
    """Add or update customers and their knowledge answers (all or nothing; answers stored hashed only)."""
    from ivr.knowledge.importer import import_customers_csv
    from ivr.knowledge.service import KnowledgeService

    db = _database(ctx)
    report = import_customers_csv(
        db, csv_file, knowledge=KnowledgeService(db, pepper=_secrets(ctx).knowledge_pepper)
    )
    _audit_admin(ctx, "cust-import", None, f"{csv_file.name}: {report.customers_added} customer(s) added, "
                 f"{report.customers_updated} updated, {report.answers_stored} answer(s) stored")
    emit(
        vars(report),
        as_json,
        f"{report.customers_added} customer(s) added, {report.customers_updated} updated, "
        f"{report.answers_stored} answer(s) stored",
    )


@customers_app.command("set")
@fallback_errors
def customers_set(
    ctx: typer.Context,
    account: str = typer.Argument(..., help="The account number (external id)."),
    phone: Optional[str] = typer.Option(None, "--phone", help="E.164 number; '' clears it."),
    email: Optional[str] = typer.Option(None, "--email", help="E-mail address; '' clears it."),
    channel: Optional[str] = typer.Option(
        None, "--channel", help="Preferred one-time-code channel: sms, voice or email."
    ),
    language: Optional[str] = typer.Option(None, "--language", help="es or en."),
    as_json: bool = JSON,
) -> None:
    """Create ACCOUNT or change its contact data; options not given are left as they are."""
    from ivr.contacts import parse_e164, parse_email
    from ivr.db.customers import CustomerRecord, find_customer
    from ivr.db.models import LANGUAGES, OTP_CHANNELS, Customer

    if len(account) > 64 or not account.strip():
        raise ValueError("account numbers are 1-64 characters long")
    if channel is not None and channel.lower() not in OTP_CHANNELS:
        raise ValueError(f"channel {channel!r} is not one of {', '.join(OTP_CHANNELS)}")
    if language is not None and language.lower()[:2] not in LANGUAGES:
        raise ValueError(f"language {language!r} is not one of {', '.join(LANGUAGES)}")
    with _database(ctx).transaction() as session:
        row = find_customer(session, account)
        created = row is None
        if row is None:
            row = Customer(external_id=account, preferred_otp_channel="sms", language="es")
            session.add(row)
        if phone is not None:
            row.phone_e164 = parse_e164(phone) if phone.strip() else None
        if email is not None:
            row.email = parse_email(email) if email.strip() else None
        if channel is not None:
            row.preferred_otp_channel = channel.lower()
        elif created and row.email and not row.phone_e164:
            row.preferred_otp_channel = "email"
        if language is not None:
            row.language = language.lower()[:2]
        wanted = row.preferred_otp_channel
        if wanted == "email" and not row.email:
            raise ValueError(
                f"account {account} prefers codes by e-mail but has no e-mail address; add --email"
            )
        if wanted in ("sms", "voice") and not row.phone_e164 and (channel is not None or row.email):
            raise ValueError(
                f"account {account} prefers codes by {wanted} but has no phone number; add --phone"
            )
        session.flush()
        record = CustomerRecord.of(row)
    changed = [name for name, value in (("phone", phone), ("e-mail", email), ("channel", channel),
                                         ("language", language)) if value is not None]
    _audit_admin(ctx, "cust-set", account, f"{'created' if created else 'changed'} by an admin: "
                 f"{', '.join(changed) or 'nothing'}")
    emit(
        {
            "account": account,
            "created": created,
            "contact": record.contact.masked(),
            "channel": record.preferred_otp_channel,
            "language": record.language,
        },
        as_json,
        f"{'created' if created else 'updated'} {account}: {record.contact.masked()}, codes by "
        f"{record.preferred_otp_channel}, language {record.language}",
    )


@customers_app.command("show")
@fallback_errors
def customers_show(ctx: typer.Context, account: str, as_json: bool = JSON) -> None:
    """ACCOUNT's contact data (masked), which questions have answers on file, consent and lock state."""
    from ivr.consent.registry import ConsentRegistry
    from ivr.knowledge.service import KnowledgeService
    from ivr.limits.service import Limits

    db = _database(ctx)
    settings = ctx_of(ctx).settings
    record = _customer(db, account)
    knowledge = KnowledgeService(db)
    questions = knowledge.questions_for(record)
    pin_on_file = knowledge.has_answer(record, "pin")
    consent = ConsentRegistry(db, policy_version=settings.consent.policy_version).state(account)
    lock = Limits(db, settings.limits).check(account, None)
    data = {
        "account": account,
        "contact": record.contact.masked(),
        "channel": record.preferred_otp_channel,
        "language": record.language,
        "questions": questions,
        "pin_on_file": pin_on_file,
        "consented": consent.consented,
        "opted_out": consent.opted_out,
        "locked": lock.locked,
        "locked_until": lock.until.isoformat() if lock.until else None,
    }
    emit(
        data,
        as_json,
        "\n".join(
            [
                f"{account}: {record.contact.masked()}; codes by {record.preferred_otp_channel}; "
                f"language {record.language}",
                f"  PIN on file: {'yes' if pin_on_file else 'no'}",
                f"  knowledge answers on file: {', '.join(questions) or 'none'}",
                "  consent: "
                + ("given" if consent.consented else "opted out" if consent.opted_out else "not recorded"),
                f"  {lock.reason}" if lock.locked else "  not locked",
            ]
        ),
    )


@customers_app.command("reset")
@fallback_errors
def customers_reset(ctx: typer.Context, account: str, as_json: bool = JSON) -> None:
    """Forget ACCOUNT's knowledge answers (e.g. after a suspected disclosure); import new ones after."""
    from ivr.knowledge.service import KnowledgeService

    db = _database(ctx)
    removed = KnowledgeService(db).reset(_customer(db, account))
    _audit_admin(ctx, "kba-reset", account, f"{removed} knowledge answer(s) removed by an admin")
    emit(
        {"account": account, "answers_removed": removed},
        as_json,
        f"removed {removed} knowledge answer(s) of {account}",
    )


@customers_app.command("erase")
@fallback_errors
def customers_erase(
    ctx: typer.Context,
    account: str = typer.Argument(..., help="The account number of the person to forget."),
    yes: bool = typer.Option(False, "--yes", help="Confirm: this cannot be undone."),
    as_json: bool = JSON,
) -> None:
    """Remove everything about ACCOUNT (right to erasure) and say what was removed; audit rows are pseudonymised."""
    from ivr.erasure import erase_person
    from ivr.notices import NoticeKind

    if not yes:
        raise ValueError(f"erasing {account} cannot be undone; add --yes to confirm")
    cli = ctx_of(ctx)
    if cli.store().model_ids_for(account):
        # The customer is told while a contact is still on file.
        cli.notify(account, NoticeKind.VOICEPRINT_DELETED)
    report = erase_person(cli.database(), cli.store(), cli.audit_log(), account)
    # The erasure's own row names no account: that is the point of it.
    _audit_admin(ctx, "erase", None, report.text().replace(account, "an account", 1))
    emit(report.to_dict(), as_json, report.text())


# --- consent -----------------------------------------------------------------
@consent_app.command("optout")
@fallback_errors
def consent_optout(ctx: typer.Context, account: str, as_json: bool = JSON) -> None:
    """Withdraw ACCOUNT's consent: erase the voiceprint and never enrol it passively again."""
    from ivr.consent.registry import ConsentRegistry

    settings = ctx_of(ctx).settings
    registry = ConsentRegistry(
        _database(ctx), policy_version=settings.consent.policy_version, store=ctx_of(ctx).store()
    )
    result = registry.opt_out(account, "cli")
    if result.voiceprint_deleted:
        from ivr.notices import NoticeKind

        ctx_of(ctx).notify(account, NoticeKind.VOICEPRINT_DELETED)
    _audit_admin(
        ctx,
        "optout",
        account,
        "opted out by an admin; voiceprint " + ("erased" if result.voiceprint_deleted else "not on file"),
    )
    emit(
        {"account": account, "opted_out": True, "voiceprint_deleted": result.voiceprint_deleted},
        as_json,
        f"{account} opted out; "
        + ("voiceprint erased" if result.voiceprint_deleted else "no voiceprint was stored"),
    )


@consent_app.command("import")
@fallback_errors
def consent_import(
    ctx: typer.Context,
    csv_file: Path = typer.Argument(..., help="CSV with an 'account' column (an enrolment manifest will do)."),
    channel: str = typer.Option(..., "--channel", help="How the consent was given, e.g. 'recorded-call' or 'crm' "
                                                       "(1-32 characters; kept with each consent)."),
    as_json: bool = JSON,
) -> None:
    """Record consent given outside the IVR, for bulk enrolment; an opt-out on file is never undone."""
    from ivr.consent.bulk import read_accounts, record_consents
    from ivr.consent.registry import ConsentRegistry

    if not 0 < len(channel) <= 32:
        raise ValueError("--channel must be 1-32 characters, e.g. 'recorded-call'")
    settings = ctx_of(ctx).settings
    registry = ConsentRegistry(_database(ctx), policy_version=settings.consent.policy_version)
    result = record_consents(registry, read_accounts(csv_file), channel)
    _audit_admin(ctx, "consent-import", None,
                 f"{len(result.recorded)} consent(s) recorded by an admin from {csv_file.name} via {channel} "
                 f"(notice {settings.consent.policy_version}); {len(result.opted_out)} opted-out left alone")
    emit(result.to_dict(), as_json,
         f"recorded {len(result.recorded)} consent(s) via {channel}; {len(result.already)} already consented"
         + (f"; {len(result.opted_out)} opted out and left alone: {', '.join(result.opted_out[:10])}"
            if result.opted_out else "")
         + "".join(f"\n  {problem}" for problem in result.invalid))


@consent_app.command("show")
@fallback_errors
def consent_show(ctx: typer.Context, account: str, as_json: bool = JSON) -> None:
    """ACCOUNT's consent state and history (what was agreed, when, through which channel)."""
    from ivr.consent.registry import ConsentRegistry

    settings = ctx_of(ctx).settings
    registry = ConsentRegistry(_database(ctx), policy_version=settings.consent.policy_version)
    state = registry.state(account)
    permission = registry.may_enrol(account)
    data = state.to_dict() | {"may_enrol": permission.allowed, "may_enrol_reason": permission.reason}
    lines = [
        f"{account}: "
        + ("consent given" if state.consented else "opted out" if state.opted_out else "no consent on file")
        + f"; enrolment {'allowed' if permission else 'refused'}: "
        f"{permission.reason}"
    ]
    lines += [
        f"  {r.at.isoformat(timespec='seconds')}  {r.kind:<10} via {r.channel}"
        + (f" (notice {r.policy_version})" if r.policy_version else "")
        for r in state.history
    ]
    emit(data, as_json, "\n".join(lines))


# --- locks -------------------------------------------------------------------
@locks_app.command("list")
@fallback_errors
def locks_list(ctx: typer.Context, as_json: bool = JSON) -> None:
    """Accounts and caller numbers (as hashes) locked right now."""
    from ivr.limits.service import Limits

    locks = Limits(_database(ctx), ctx_of(ctx).settings.limits).locks()
    rows = [
        {"kind": lock.kind, "subject": lock.subject, "until": lock.until.isoformat(), "reason": lock.reason}
        for lock in locks
    ]
    emit(
        {"locks": rows},
        as_json,
        "\n".join(
            f"{r['kind']:<8} {r['subject'] if r['kind'] == 'identity' else r['subject'][:16] + '...':<24} "
            f"until {r['until']}  {r['reason']}"
            for r in rows
        )
        or "nothing is locked",
    )


@locks_app.command("unlock")
@fallback_errors
def locks_unlock(
    ctx: typer.Context,
    account: Optional[str] = typer.Argument(None, help="Account to unlock."),
    caller: Optional[str] = typer.Option(
        None,
        "--caller",
        help="Unlock this caller number instead (as the switch presents it, e.g. +573001234567).",
    ),
    as_json: bool = JSON,
) -> None:
    """Lift the lock on ACCOUNT (or on a caller number) before it runs out; earlier failures stop counting."""
    from ivr.limits.service import Limits

    if (account is None) == (caller is None):
        raise ValueError("give either an ACCOUNT or --caller NUMBER")
    limits = Limits(_database(ctx), ctx_of(ctx).settings.limits)
    if account is not None:
        was_locked, what, hashed = limits.unlock(account), account, None
    else:
        hashed = _secrets(ctx).caller_hash(caller)
        if hashed is None:
            raise ValueError(f"{caller!r} is a withheld number; withheld numbers are never locked")
        was_locked, what = limits.unlock_caller(hashed), "the caller number"
    _audit_admin(
        ctx,
        "unlock",
        account,
        f"unlocked by an admin (was {'locked' if was_locked else 'not locked'})",
        caller_hash=hashed,
    )
    emit(
        {"unlocked": was_locked, "account": account},
        as_json,
        f"unlocked {what}" if was_locked else f"{what} was not locked; its failure count is reset",
    )


# --- audit -------------------------------------------------------------------
@audit_app.callback()
@fallback_errors
def audit(
    ctx: typer.Context,
    since: Optional[str] = typer.Option(
        None, "--since", help="From this date (YYYY-MM-DD) or ISO time, UTC."
    ),
    until: Optional[str] = typer.Option(
        None, "--until", help="Up to and including this date, or before this ISO time."
    ),
    identity: Optional[str] = typer.Option(None, "--identity", "--account", help="Only this account."),
    result: Optional[str] = typer.Option(None, "--result", help="Only this result, e.g. PASS, FAIL, LOCKED."),
    flow: Optional[str] = typer.Option(None, "--flow", help="Only this flow: verify, enroll, optout..."),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Only the newest N entries."),
    csv_out: Optional[Path] = typer.Option(None, "--csv", help="Write CSV to this file ('-': stdout)."),
    as_json: bool = JSON,
) -> None:
    """List, filter and export audit entries (never audio, codes or answers); see also 'ivr audit summary'."""
    if ctx.invoked_subcommand is not None:
        return
    from ivr.audit.export import factors_text, write_csv, write_json
    from ivr.audit.log import AuditLog

    start, end = _when(since), _when(until, end_of_day=True)
    if start and end and start >= end:
        raise ValueError("--since must be before --until")
    records = AuditLog(_database(ctx)).query(
        since=start, until=end, identity=identity, result=result, flow=flow, limit=limit
    )
    if csv_out is not None:
        if str(csv_out) == "-":
            write_csv(records, sys.stdout)
        else:
            with csv_out.open("w", newline="", encoding="utf-8") as out:
                count = write_csv(records, out)
            typer.echo(f"wrote {count} audit entries to {csv_out}", err=True)
        return
    if as_json:
        write_json(records, sys.stdout)
        return
    typer.echo(
        "\n".join(
            f"{r.at.isoformat(timespec='seconds')} {r.flow:<8} {r.identity or '-':<12} {r.result:<13} "
            f"{factors_text(r.factors) or '-':<40} {r.rule or ''}"
            for r in records
        )
        or "no audit entries match"
    )


@audit_app.command("verify")
@fallback_errors
def audit_verify(ctx: typer.Context, as_json: bool = JSON) -> None:
    """Check the audit log's seals: exit 0 when intact, 1 when a row was changed or deleted (names which)."""
    report = ctx_of(ctx).audit_log().verify()
    lines = [f"{report.rows} audit row(s) checked; chain head {report.head[:16]}..."]
    if report.unsealed:
        lines.append(f"{report.unsealed} row(s) from before sealing (migration 0003) cannot be checked")
    if report.cut_at_start:
        lines.append(f"the chain starts at row {report.first_id}: older rows were purged by retention")
    lines += [f"TAMPERED: {p}" for p in report.problems] or ["intact"]
    emit(report.to_dict(), as_json, "\n".join(lines))
    if not report.intact:
        raise typer.Exit(int(ExitCode.REJECT))


@audit_app.command("summary")
@fallback_errors
def audit_summary(
    ctx: typer.Context,
    day: Optional[str] = typer.Option(None, "--day", help="YYYY-MM-DD (UTC); default: today."),
    as_json: bool = JSON,
) -> None:
    """Attempts, voice pass/fail/inconclusive rates, step-up rate and lockouts of one day."""
    from ivr.audit.log import AuditLog
    from ivr.audit.summary import daily_summary

    log = AuditLog(_database(ctx))
    try:
        wanted = date.fromisoformat(day) if day else log.now().date()
    except ValueError:
        raise ValueError(f"--day {day!r} is not a date (YYYY-MM-DD)") from None
    summary = daily_summary(log, wanted)
    emit(summary.to_dict(), as_json, summary.text())


# --- purge -------------------------------------------------------------------
@fallback_errors
def purge(
    ctx: typer.Context,
    dry_run: bool = typer.Option(False, "--dry-run", help="Only report what would go."),
    as_json: bool = JSON,
) -> None:
    """Apply the retention limits: unused voiceprints, old audit rows, spent codes, old limit events."""
    from ivr.consent.registry import ConsentRegistry
    from ivr.consent.retention import purge as run_purge
    from ivr.limits.service import Limits

    settings = ctx_of(ctx).settings
    db = _database(ctx)
    report = run_purge(
        db,
        settings.retention,
        store=ctx_of(ctx).store(),
        consent=ConsentRegistry(db, policy_version=settings.consent.policy_version),
        limits=Limits(db, settings.limits),
        dry_run=dry_run,
    )
    data, text = report.to_dict(), report.text()
    if not dry_run:
        from voiceprints.store.defence_purge import purge_defence_data

        defences = purge_defence_data(ctx_of(ctx).store(), settings.core())
        data["defences"] = defences.to_dict()
        text += "; " + ", ".join(f"{n} {what.replace('_', ' ')}" for what, n in defences.to_dict().items())
        _audit_admin(ctx, "purge", None, text)
    emit(data, as_json, text)

"""E-mail through prefect-email: the SMTP credentials block and the drift alert people receive.

The SMTP settings live in a Prefect ``EmailServerCredentials`` block (default name ``gmail``) so the
password is stored once, encrypted by Prefect, and never appears in a flow's parameters or logs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from typing import TYPE_CHECKING, Any

from prefect_email import EmailServerCredentials, SMTPType, email_send_message

from heartrisk.schema import BY_NAME

if TYPE_CHECKING:
    from heartrisk.monitor import DriftResult

SECURITY: dict[str, SMTPType] = {"ssl": SMTPType.SSL, "starttls": SMTPType.STARTTLS, "none": SMTPType.INSECURE}


def create_email_block(
    name: str,
    *,
    server: str,
    port: int,
    security: str,
    username: str | None = None,
    password: str | None = None,
) -> EmailServerCredentials:
    """Save (or replace) the SMTP block: Gmail is ``smtp.gmail.com``, 465, ssl, an app password."""
    block = EmailServerCredentials(
        smtp_server=server,
        smtp_port=port,
        smtp_type=SECURITY[security],
        username=username or None,
        password=password or "",
    )
    block.save(name, overwrite=True)
    return block


LEGEND = (
    "Scores: for p-value tests (K-S, chi-square, Z-test) a column drifts when its score is below the threshold; "
    "for distance tests (Wasserstein, Jensen-Shannon, PSI) when its score reaches the threshold."
)


@dataclass(frozen=True)
class Message:
    subject: str
    html: str
    text: str


def drift_message(
    result: DriftResult,
    *,
    current_rows: int,
    source: str,
    report_url: str,
    report_path: str,
    actions: Sequence[str],
) -> Message:
    """What the operator reads: the verdict and share in the subject, the drifted columns in the body."""
    share = f"{result.share:.0%}"
    if result.drift_detected:
        subject = f"HeartRisk: drift detected ({share} of columns)"
    else:
        subject = f"HeartRisk: no drift ({share} of columns drifted, alert at {result.threshold:.0%})"
    drifted = [c for c in result.columns if c.drifted]
    intro = (
        f"{result.drifted_count} of {len(result.columns)} columns drifted ({share}); the alert threshold is "
        f"{result.threshold:.0%} of columns. Current data: {current_rows} rows from {source}."
    )
    rows = [
        (f"{BY_NAME[c.column].label} ({c.column})", c.method, f"{c.score:.4g}", f"{c.threshold:g}") for c in drifted
    ]
    text_lines = [intro, LEGEND, ""]
    if rows:
        text_lines.append("Drifted columns (column, test, score, threshold):")
        text_lines += [f"  - {name}: {method}, score {score}, threshold {limit}" for name, method, score, limit in rows]
    else:
        text_lines.append("No column drifted.")
    links = [f"Full report (MLflow): {report_url}" if report_url else "", f"Report file: {report_path}"]
    text_lines += ["", *[line for line in links if line], "", *actions]

    table = [
        "<table border='1' cellpadding='4' style='border-collapse:collapse'>",
        "<tr><th>column</th><th>test</th><th>score</th><th>threshold</th></tr>",
        *(f"<tr>{''.join(f'<td>{escape(cell)}</td>' for cell in row)}</tr>" for row in rows),
        "</table>",
    ]
    report = f"<a href='{escape(report_url, quote=True)}'>full Evidently report in MLflow</a>, " if report_url else ""
    # One element per line: SMTP refuses lines over 998 characters (RFC 5321).
    html = "\n".join(
        [
            f"<p>{escape(intro)}</p>",
            f"<p>{escape(LEGEND)}</p>",
            *(table if rows else ["<p>No column drifted.</p>"]),
            f"<p>{report}file <code>{escape(report_path)}</code></p>",
            *(f"<p>{escape(action)}</p>" for action in actions),
        ]
    )
    return Message(subject=subject, html=html, text="\n".join(text_lines))


async def send(
    message: Message,
    *,
    block: str,
    sender: str,
    recipients: Sequence[str],
    retries: int,
    retry_delay: float,
) -> dict[str, Any]:
    """Send from inside a flow; raises (failing the flow) when the last retry fails."""
    credentials = await EmailServerCredentials.aload(block)
    sender_task = email_send_message.with_options(name="send-email", retries=retries, retry_delay_seconds=retry_delay)
    try:
        await sender_task(
            subject=message.subject,
            msg=message.html,
            msg_plain=message.text,
            email_server_credentials=credentials,
            email_from=sender,
            email_to=list(recipients),
        )
    except Exception as exc:
        host = getattr(credentials.smtp_server, "value", credentials.smtp_server)
        server = f"{host}:{credentials.smtp_port or credentials.smtp_type.value}"
        raise RuntimeError(
            f"e-mail not sent through block '{block}' ({server}) after {retries} retries: {exc!r}"
        ) from exc
    return {"sent": True, "subject": message.subject, "recipients": list(recipients), "block": block}

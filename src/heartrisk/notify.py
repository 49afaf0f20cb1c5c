"""E-mail to the operator: what each monitoring outcome says, and how it is sent.

The SMTP settings live in a prefect-email ``EmailServerCredentials`` block (default name ``gmail``), so
the password is stored once, encrypted by Prefect, and never appears in a flow's parameters or logs;
the block opens the connection (SSL, STARTTLS or plain, with login). The message itself is built with
the standard library's ``email`` package: a text and an HTML part as alternatives, with the ``Date``
and ``Message-ID`` headers that mail clients and spam filters expect.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from html import escape
from typing import Any

from prefect import task
from prefect_email import EmailServerCredentials, SMTPType

from heartrisk.drift import DriftResult
from heartrisk.schema import BY_NAME
from heartrisk.settings import MailSettings
from heartrisk.summaries import MonitorSummary, prediction_line, versions_line

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


def _html(paragraphs: Sequence[str], table: Sequence[tuple[str, ...]] = ()) -> str:
    """Escaped paragraphs, then an optional table, one element per line (SMTP allows 998 characters a line)."""
    lines = [f"<p>{escape(text)}</p>" for text in paragraphs]
    if table:
        lines += ["<table border='1' cellpadding='4' style='border-collapse:collapse'>"]
        lines += ["<tr><th>column</th><th>test</th><th>score</th><th>threshold</th></tr>"]
        lines += [f"<tr>{''.join(f'<td>{escape(cell)}</td>' for cell in row)}</tr>" for row in table]
        lines += ["</table>"]
    return "\n".join(lines)


def _subject(result: DriftResult) -> str:
    """The verdict at a glance: input drift and its share, and whether the model's output moved."""
    share = f"{result.share:.0%}"
    predictions = result.prediction is not None and result.prediction.detected
    if result.drift_detected:
        return f"HeartRisk: drift detected ({share} of columns)" + (", and in the predictions" if predictions else "")
    quiet = f"{share} of columns drifted, alert at {result.threshold:.0%}"
    return f"HeartRisk: prediction drift (inputs: {quiet})" if predictions else f"HeartRisk: no drift ({quiet})"


def _facts(result: DriftResult, summary: MonitorSummary) -> list[str]:
    """The paragraphs before the table: inputs, sampling, the model's output, and who served the window."""
    intro = (
        f"{result.drifted_count} of {len(result.columns)} input columns drifted ({result.share:.0%}); the alert "
        f"threshold is {result.threshold:.0%} of columns. Current data: {summary.current_rows} rows from "
        f"{summary.current_source}."
    )
    if summary.sampled_rows is not None:
        intro += (
            f" The window held {summary.current_rows} rows: {summary.sampled_rows} of them, drawn uniformly at "
            "random (HEARTRISK_DRIFT_MAX_ROWS), were compared."
        )
    drift = summary.prediction_drift or {}
    predictions = f"What the model said (probability of coronary artery disease): {prediction_line(drift)}."
    if drift.get("reference"):
        predictions += f" Reference: {drift['reference']}. It is not counted in the share of input columns."
    return [intro, predictions, f"Rows per model version in the window: {versions_line(summary.model_versions)}."]


def drift_message(result: DriftResult, *, summary: MonitorSummary, report_url: str, actions: Sequence[str]) -> Message:
    """What the operator reads: the verdict and share in the subject, the drifted columns in the body."""
    facts = _facts(result, summary)
    rows = [
        (f"{BY_NAME[c.column].label} ({c.column})", c.method, f"{c.score:.4g}", f"{c.threshold:g}")
        for c in result.columns
        if c.drifted
    ]
    text = [*facts, LEGEND, ""]
    if rows:
        text.append("Drifted columns (column, test, score, threshold):")
        text += [f"  - {name}: {method}, score {score}, threshold {limit}" for name, method, score, limit in rows]
    else:
        text.append("No column drifted.")
    board = summary.dashboard_url
    links = [
        f"Dashboard of every run (Evidently UI): {board}" if board else "",
        f"Full report (MLflow): {report_url}" if report_url else "",
        f"Report file: {summary.report_path or ''}",
    ]
    text += ["", *[line for line in links if line], "", *actions]
    html = _html([*facts, LEGEND], rows) + ("" if rows else "\n<p>No column drifted.</p>")
    html += "\n<p>" + ", ".join(_html_links(board, report_url, summary.report_path or "")) + "</p>"
    html += "".join(f"\n<p>{escape(action)}</p>" for action in actions)
    return Message(subject=_subject(result), html=html, text="\n".join(text))


def _html_links(board: str, report_url: str, report_path: str) -> list[str]:
    links = [f"<a href='{escape(board, quote=True)}'>this run in the Evidently UI</a>"] if board else []
    links += [f"<a href='{escape(report_url, quote=True)}'>full Evidently report in MLflow</a>"] if report_url else []
    return [*links, f"file <code>{escape(report_path)}</code>"]


def plain_message(subject: str, lines: Sequence[str]) -> Message:
    """A message of plain paragraphs, the same in text and HTML (the retention alerts)."""
    return Message(subject=subject, html=_html(lines), text="\n".join(lines))


def not_enough_data_message(*, current_rows: int, minimum: int, source: str) -> Message:
    """A quiet window still gets a message, so the operator can tell a quiet week from a broken monitor."""
    subject = f"HeartRisk: not enough data ({current_rows} of {minimum} rows)"
    lines = [
        f"The monitor ran, but the current data has {current_rows} rows and at least {minimum} are needed "
        f"to compare it with the reference (HEARTRISK_DRIFT_MIN_ROWS). Current data: {source}.",
        "No drift was computed and nothing was retrained. The next scheduled run will try again.",
    ]
    return Message(subject=subject, html=_html(lines), text="\n".join(lines))


def email(message: Message, *, sender: str, recipients: Sequence[str]) -> EmailMessage:
    """The MIME message: text and HTML as alternatives, Date and Message-ID set, no empty headers."""
    mail = EmailMessage()
    mail["Subject"] = message.subject
    mail["From"] = sender
    mail["To"] = ", ".join(recipients)
    mail["Date"] = formatdate(localtime=False, usegmt=True)
    mail["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    mail.set_content(message.text)
    mail.add_alternative(message.html, subtype="html")
    return mail


@task(name="send-email")
def _deliver(credentials: EmailServerCredentials, mail: EmailMessage) -> None:
    with credentials.get_server() as server:
        server.send_message(mail)


async def send(
    message: Message, settings: MailSettings, *, recipients: Sequence[str], block: str | None = None
) -> dict[str, Any]:
    """Send from inside a flow through ``block`` (default the settings' block), retrying as the settings
    say; raises (failing the flow) when the last retry fails."""
    block = block or settings.block
    credentials = await EmailServerCredentials.aload(block)
    deliver = _deliver.with_options(retries=settings.retries, retry_delay_seconds=settings.retry_delay)
    try:
        deliver(credentials, email(message, sender=settings.sender, recipients=recipients))
    except Exception as exc:
        host = getattr(credentials.smtp_server, "value", credentials.smtp_server)
        server = f"{host}:{credentials.smtp_port or credentials.smtp_type.value}"
        raise RuntimeError(
            f"e-mail not sent through block '{block}' ({server}) after {settings.retries} retries: {exc!r}"
        ) from exc
    return {"sent": True, "subject": message.subject, "recipients": list(recipients), "block": block}

"""Security basics of a public page: response headers and the cross-site check of the form POST.

The form has no session or login and the original project's clients post it without a token, so
cross-site posts are refused with the browser's own signals (GUIDE 4b): ``Sec-Fetch-Site`` and
``Origin``. A request with neither header (curl, scripts, old clients) is accepted.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Request, Response

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",  # "no-referrer" would make the browser send Origin: null on our own form
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}
ALLOWED_FETCH_SITES = ("same-origin", "none")


def add_headers(response: Response, *, static: bool) -> Response:
    """Security headers on every answer (a view's own value of one is kept); health data in answers
    must not be cached anywhere. One pass over the headers: six ``setdefault`` calls cost twice as much."""
    present = {name.lower() for name, _ in response.headers.items()}
    response.headers.extend([(name, value) for name, value in HEADERS.items() if name.lower() not in present])
    if not static:
        response.headers["Cache-Control"] = "no-store"
    return response


def cross_site_reason(request: Request) -> str | None:
    """Why this POST looks cross-site, or None when it is same-origin or carries no such signal."""
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None and site.lower() not in ALLOWED_FETCH_SITES:
        return f"Sec-Fetch-Site is {site!r}"
    origin = request.headers.get("Origin")
    if origin is not None and urlsplit(origin).netloc.lower() != request.host.lower():
        return f"Origin {origin!r} is not this site"
    return None

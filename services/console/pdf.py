"""The one-stop statement as PDF, rendered by WeasyPrint from the same HTML as the printable page
(its print CSS included): no browser in the console, the layout and the Chinese labels exactly the
page's (Pango with the host's CJK fonts: Debian's fonts-noto-cjk). The page's stylesheet is read
from the package's static files; WeasyPrint fetches nothing else (no URL of a page reaches the network)."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from weasyprint import HTML  # type: ignore[import-untyped]
from weasyprint.urls import URLFetcher, URLFetcherResponse  # type: ignore[import-untyped]

STATIC = Path(__file__).parent / "static"
BASE_URL = "http://console.invalid/"


class StaticOnly(URLFetcher):  # type: ignore[misc]
    """Serves the console's static files to WeasyPrint, refuses every other URL."""

    def fetch(self, url: str, headers: Any = None) -> URLFetcherResponse:
        path = urlsplit(url).path
        name = path.removeprefix("/static/")
        found = STATIC / name
        if not path.startswith("/static/") or "/" in name or not found.is_file():
            raise ValueError(f"the statement's PDF loads only the console's static files, not {url}")
        kind = "text/css" if name.endswith(".css") else "application/octet-stream"
        return URLFetcherResponse(url, body=found.read_bytes(), headers={"Content-Type": kind})


def html_to_pdf(html: str) -> bytes:
    pdf: bytes = HTML(string=html, base_url=BASE_URL, url_fetcher=StaticOnly()).write_pdf()
    return pdf

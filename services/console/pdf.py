"""The one-stop statement as PDF, rendered by WeasyPrint from the same HTML as the printable page
(its print CSS included): no browser in the console, the layout and the Chinese labels exactly the
page's (Pango with the host's CJK fonts: Debian's fonts-noto-cjk)."""

from __future__ import annotations

from weasyprint import HTML  # type: ignore[import-untyped]


def html_to_pdf(html: str, base_url: str) -> bytes:
    pdf: bytes = HTML(string=html, base_url=base_url).write_pdf()
    return pdf

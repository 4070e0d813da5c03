"""The readable text of a raw e-mail (RFC 5322): its subject and body, without headers or HTML markup."""

from __future__ import annotations

import email
import email.policy
import html.parser
import re

__all__ = ["email_text", "HTML_TAG"]

HTML_TAG = re.compile(r"</?(html|body|p|br|div|span|font|table|tr|td|a|b|i|img)(?=[\s/>])[^>]*>", re.IGNORECASE)


def email_text(raw: bytes) -> str:
    """Subject and readable body of a raw e-mail: plain-text parts, else HTML parts; markup dropped."""
    message = email.message_from_bytes(raw, policy=email.policy.default)
    parts = {"text/plain": [], "text/html": []}
    for part in message.walk():
        if part.get_content_type() in parts and not part.is_attachment():
            payload = part.get_payload(decode=True) or b""
            charset = part.get_content_charset() or "latin-1"
            try:
                parts[part.get_content_type()].append(payload.decode(charset, errors="replace"))
            except LookupError:  # an unknown charset name in a spam header
                parts[part.get_content_type()].append(payload.decode("latin-1"))
    body = " ".join(parts["text/plain"]) or " ".join(parts["text/html"])
    if HTML_TAG.search(body):  # HTML parts, and HTML sent as plain text (common in spam)
        body = _strip_html(body)
    return " ".join(f"{message.get('subject', '')} {body}".split())


def _strip_html(markup: str) -> str:
    """The text of an HTML document, without tags, scripts or styles."""
    class _Text(html.parser.HTMLParser):
        def __init__(self):
            super().__init__(convert_charrefs=True)
            self.chunks, self.skip = [], 0

        def handle_starttag(self, tag, attrs):
            self.skip += tag in ("script", "style")

        def handle_endtag(self, tag):
            self.skip -= tag in ("script", "style") and self.skip > 0

        def handle_data(self, data):
            if not self.skip:
                self.chunks.append(data)

    parser = _Text()
    parser.feed(markup)
    parser.close()
    return " ".join(parser.chunks)

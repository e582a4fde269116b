"""Filters for the wgnetconf playbooks.

`redact_keys`: replaces the value of every WireGuard private-key and
preshared-key element in an XML text with `<redacted>` (also when the
element carries a namespace prefix), so diffs shown with `--diff` never
print a secret. Public keys stay.
"""

import re

_KEY = re.compile(
    r"<(?P<tag>(?:[\w.-]+:)?(?:private-key|preshared-key))(?P<attrs>(?:\s[^>]*)?)>"
    r"[^<]*"
    r"</(?P=tag)\s*>"
)


def redact_keys(text):
    if text is None:
        return text
    if not isinstance(text, str):
        text = str(text)
    return _KEY.sub(lambda m: "<%s%s>&lt;redacted&gt;</%s>" % (m.group("tag"), m.group("attrs"), m.group("tag")), text)


class FilterModule(object):
    def filters(self):
        return {"redact_keys": redact_keys}

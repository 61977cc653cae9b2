"""The operating-system user this process runs as, for messages and the audit log."""

from __future__ import annotations

import getpass
import os


def name() -> str:
    """The account name, or ``uid N`` when the uid has none (as in some containers, where
    ``getpass.getuser`` raises and would replace the message being written)."""
    try:
        return getpass.getuser()
    except Exception:
        return f"uid {os.getuid()}"

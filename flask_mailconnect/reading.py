"""Reading one message on demand: the use-case behind the message page.

:func:`read_message` checks that the actor may ``read`` the account's mail (a personal
account's owner; those who manage a shared one), logs in over IMAP through the same code as
the sync (:func:`~flask_mailconnect.mailbox_access.open_mailbox`: credentials, the network
guard, TLS, failures recorded on the account and raised as
:class:`~flask_mailconnect.exceptions.SyncError`), EXAMINEs the folder and fetches the message
with ``BODY.PEEK[]`` (so reading it marks nothing as read), then makes it safe to show
(:mod:`flask_mailconnect.message_view`).

A lost encryption key raises :class:`~flask_mailconnect.exceptions.EncryptionKeyError` from
the credentials, before any connection: the blueprint answers it with the 503 page.
"""

from __future__ import annotations

from .mailbox_access import open_mailbox, refuse_early, require_action
from .message_view import MessageView, render_message
from .models import MailAccount
from .owners import Actor
from .runtime import Runtime
from .transport import mailbox

#: Longest folder name accepted (what the account's folder columns hold).
FOLDER_MAX = 255


def valid_folder(folder: str) -> bool:
    """A folder name worth asking the server about: 1 .. 255 characters, no control
    characters (they cannot be sent in an IMAP command)."""
    return 0 < len(folder) <= FOLDER_MAX and not any(ord(c) < 0x20 or ord(c) == 0x7F
                                                      for c in folder)  # fmt: skip


def read_message(
    state: Runtime,
    account: MailAccount,
    folder: str,
    uid: int,
    *,
    actor: Actor | None = None,
    show_images: bool = False,
    max_bytes: int = mailbox.MESSAGE_MAX_BYTES,
) -> MessageView | None:
    """The message ``uid`` of ``folder``, parsed and sanitised; ``None`` when the folder or
    the message does not exist. Raises ``PermissionDenied`` (actor may not read the account's
    mail) and ``SyncError`` (the server could not be read; recorded on the account). Does not
    commit: commit after a ``SyncError`` to keep the recorded failure."""
    require_action(state, actor, "read", account)
    if not valid_folder(folder) or uid < 1:
        return None
    refuse_early(account)
    with open_mailbox(state, account) as client:
        found = mailbox.fetch_message(client, folder, uid, max_bytes)
    if found is None:
        return None
    return render_message(
        found.raw, uid=found.uid, folder=folder, arrived=found.arrived,
        show_images=show_images, truncated=found.truncated,
    )  # fmt: skip


__all__ = ["FOLDER_MAX", "read_message", "valid_folder"]

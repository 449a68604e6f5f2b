"""A small pure-Python IMAP4rev1 server for the demo sandbox (asyncio, no system packages).

It serves one or more in-memory mailboxes well enough for imaplib, IMAPClient and
Flask-MailConnect: LOGIN, AUTHENTICATE PLAIN (and XOAUTH2, given a token check), SELECT/EXAMINE,
LIST/LSUB with SPECIAL-USE, STATUS, FETCH and UID FETCH (envelope, headers, bodies, partial
bodies), SEARCH, STORE, APPEND, EXPUNGE and CLOSE. Anything else gets ``BAD``. It is a demo and
test peer, not a mail server: everything lives in memory and disappears when the process ends.

The module has two parts: :func:`parse_command` turns the bytes of one client command (with its
literals) into Python values, and :class:`Session` runs one client connection.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import email.utils
import re
import ssl
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email import policy
from email.parser import BytesHeaderParser
from fnmatch import fnmatchcase

SYSTEM_FLAGS = ("\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft")
CAPABILITIES = "IMAP4rev1 LITERAL+ SPECIAL-USE AUTH=PLAIN"
#: ``(user, bearer token) -> bool``: accepts XOAUTH2 logins (the sandbox asks its OAuth provider).
TokenCheck = Callable[[str, str], bool]
MAX_LITERAL = 25 * 1024 * 1024


class ParseError(ValueError):
    """The client sent something that is not valid IMAP syntax."""


# -- parsing ---------------------------------------------------------------------------------

_LITERAL_AT_END = re.compile(rb"\{(\d+)(\+?)\}\r\n$")


def parse_command(data: bytes) -> list[object]:
    """Tokens of one command: atoms and quoted strings as ``str``, literals as ``bytes``,
    parenthesised lists as ``list``, ``NIL`` as ``None``.

    ``data`` is the command as received, literals included (``{5}\\r\\nhello``), without the final
    CRLF. Square brackets belong to the atom they appear in, so
    ``BODY.PEEK[HEADER.FIELDS (FROM TO)]<0.100>`` is one token.
    """
    stack: list[list[object]] = [[]]
    i, n = 0, len(data)
    while i < n:
        char = data[i : i + 1]
        if char == b" ":
            i += 1
        elif char == b"(":
            stack.append([])
            i += 1
        elif char == b")":
            if len(stack) == 1:
                raise ParseError("unbalanced ')'")
            done = stack.pop()
            stack[-1].append(done)
            i += 1
        elif char == b'"':
            i += 1
            out = bytearray()
            while True:
                if i >= n:
                    raise ParseError("unterminated quoted string")
                c = data[i : i + 1]
                if c == b"\\":
                    out += data[i + 1 : i + 2]
                    i += 2
                elif c == b'"':
                    i += 1
                    break
                else:
                    out += c
                    i += 1
            stack[-1].append(out.decode("utf-8", "replace"))
        elif char == b"{":
            match = re.compile(rb"\{(\d+)\+?\}\r\n").match(data, i)
            if not match:
                raise ParseError("bad literal")
            size = int(match.group(1))
            start = match.end()
            if start + size > n:
                raise ParseError("literal shorter than announced")
            stack[-1].append(bytes(data[start : start + size]))
            i = start + size
        else:
            start, depth = i, 0
            while i < n:
                c = data[i : i + 1]
                if c == b"[":
                    depth += 1
                elif c == b"]":
                    depth -= 1
                elif depth == 0 and c in (b" ", b"(", b")"):
                    break
                i += 1
            atom = data[start:i].decode("utf-8", "replace")
            stack[-1].append(None if atom.upper() == "NIL" else atom)
    if len(stack) != 1:
        raise ParseError("unbalanced '('")
    return stack[0]


def parse_sequence_set(text: str, largest: int) -> set[int]:
    """Numbers named by an IMAP sequence set such as ``1:3,7,10:*`` (``*`` is ``largest``)."""
    numbers: set[int] = set()
    for part in text.split(","):
        bounds = part.split(":")
        if not 1 <= len(bounds) <= 2:
            raise ParseError(f"bad sequence set {text!r}")
        try:
            values = [largest if b == "*" else int(b) for b in bounds]
        except ValueError:
            raise ParseError(f"bad sequence set {text!r}") from None
        if any(v < 0 for v in values):
            raise ParseError(f"bad sequence set {text!r}")
        low, high = min(values), max(values)
        numbers.update(range(low, high + 1))
    return numbers


def quote(value: str | bytes | None) -> bytes:
    """An IMAP string: ``NIL``, a quoted string, or a literal when quoting is not possible."""
    if value is None:
        return b"NIL"
    raw = value.encode("utf-8") if isinstance(value, str) else value
    if b"\r" in raw or b"\n" in raw or any(b > 126 for b in raw) or len(raw) > 1000:
        return b"{%d}\r\n%s" % (len(raw), raw)
    return b'"' + raw.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


# -- mailbox store ---------------------------------------------------------------------------


@dataclass
class Message:
    uid: int
    raw: bytes
    flags: set[str] = field(default_factory=set)
    internaldate: datetime = field(default_factory=lambda: datetime.now(timezone.utc))

    @property
    def header_bytes(self) -> bytes:
        end = self.raw.find(b"\r\n\r\n")
        return self.raw if end < 0 else self.raw[: end + 4]

    @property
    def text_bytes(self) -> bytes:
        end = self.raw.find(b"\r\n\r\n")
        return b"" if end < 0 else self.raw[end + 4 :]


@dataclass
class Folder:
    name: str
    special_use: str | None = None
    uidvalidity: int = field(default_factory=lambda: int(datetime.now().timestamp()))
    uidnext: int = 1
    messages: list[Message] = field(default_factory=list)

    def append(self, raw: bytes, flags: Iterable[str] = (), when: datetime | None = None) -> int:
        message = Message(self.uidnext, _crlf(raw), set(flags), when or datetime.now(timezone.utc))
        self.messages.append(message)
        self.uidnext += 1
        return message.uid


def _crlf(raw: bytes) -> bytes:
    """Normalise line endings to CRLF, as IMAP requires."""
    return re.sub(rb"\r?\n", b"\r\n", raw)


DEFAULT_FOLDERS = (
    ("INBOX", None),
    ("Sent", "\\Sent"),
    ("Drafts", "\\Drafts"),
    ("Archive", "\\Archive"),
    ("Trash", "\\Trash"),
)


class Mailbox:
    """One account's folders. Thread-safe: SMTP deliveries may come from another thread."""

    def __init__(self, username: str, password: str) -> None:
        self.username = username
        self.password = password
        self.lock = threading.RLock()
        self.folders: dict[str, Folder] = {
            name: Folder(name, special_use) for name, special_use in DEFAULT_FOLDERS
        }

    def folder(self, name: str) -> Folder | None:
        if name.upper() == "INBOX":
            name = "INBOX"
        return self.folders.get(name)

    def deliver(self, raw: bytes, folder: str = "INBOX", flags: Iterable[str] = ()) -> int:
        """Store a message; returns its UID."""
        with self.lock:
            target = self.folder(folder)
            if target is None:
                raise KeyError(folder)
            return target.append(raw, flags)


# -- fetch helpers ---------------------------------------------------------------------------

_SECTION = re.compile(r"^(BODY(?:\.PEEK)?)\[([^\]]*)\](?:<(\d+)(?:\.(\d+))?>)?$", re.IGNORECASE)


def _imap_date(when: datetime) -> str:
    return when.strftime("%d-%b-%Y %H:%M:%S %z")


def _address_list(value: str | None) -> bytes:
    if not value:
        return b"NIL"
    parts = []
    for name, address in email.utils.getaddresses([value]):
        if not address and not name:
            continue
        mailbox, _, host = address.partition("@")
        parts.append(
            b"(" + b" ".join([quote(name or None), b"NIL", quote(mailbox), quote(host or None)])
            + b")"
        )  # fmt: skip
    return b"(" + b"".join(parts) + b")" if parts else b"NIL"


def envelope(message: Message) -> bytes:
    """The ENVELOPE structure (RFC 3501 7.4.2); header values stay as they are on the wire."""
    headers = BytesHeaderParser(policy=policy.compat32).parsebytes(message.header_bytes)

    def get(name: str) -> str | None:
        value = headers.get(name)
        return None if value is None else " ".join(str(value).split())

    sender = get("From")
    fields = [
        quote(get("Date")),
        quote(get("Subject")),
        _address_list(sender),
        _address_list(get("Sender") or sender),
        _address_list(get("Reply-To") or sender),
        _address_list(get("To")),
        _address_list(get("Cc")),
        _address_list(get("Bcc")),
        quote(get("In-Reply-To")),
        quote(get("Message-ID")),
    ]
    return b"(" + b" ".join(fields) + b")"


def _header_lines(header: bytes) -> list[tuple[str, bytes]]:
    """(lower-case name, raw bytes incl. continuation lines) for each header field."""
    lines: list[tuple[str, bytes]] = []
    for line in header.split(b"\r\n"):
        if not line:
            continue
        if line[:1] in (b" ", b"\t") and lines:
            name, raw = lines[-1]
            lines[-1] = (name, raw + line + b"\r\n")
        else:
            name = line.split(b":", 1)[0].decode("ascii", "replace").strip().lower()
            lines.append((name, line + b"\r\n"))
    return lines


def section_bytes(message: Message, section: str, fields: list[str] | None) -> bytes:
    """The bytes of one body section: ``""``, ``HEADER``, ``TEXT``, ``1``, ``HEADER.FIELDS``..."""
    upper = section.upper()
    if upper == "":
        return message.raw
    if upper == "HEADER":
        return message.header_bytes
    if upper in ("TEXT", "1"):
        return message.text_bytes
    if upper in ("HEADER.FIELDS", "HEADER.FIELDS.NOT"):
        wanted = {f.lower() for f in fields or []}
        keep = upper == "HEADER.FIELDS"
        lines = [raw for name, raw in _header_lines(message.header_bytes)
                 if (name in wanted) == keep]  # fmt: skip
        return b"".join(lines) + b"\r\n"
    raise ParseError(f"unsupported section {section!r}")


# -- sessions --------------------------------------------------------------------------------


class Session:
    """One client connection: reads tagged commands, writes responses."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        mailboxes: dict[str, Mailbox],
        token_check: TokenCheck | None = None,
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.mailboxes = mailboxes
        self.token_check = token_check
        self.caps = CAPABILITIES + (" AUTH=XOAUTH2" if token_check else "")
        self.mailbox: Mailbox | None = None
        self.selected: Folder | None = None
        self.readonly = False
        self.known_exists = 0

    # -- I/O ---------------------------------------------------------------------------------

    def send(self, line: bytes | str) -> None:
        if isinstance(line, str):
            line = line.encode("utf-8")
        self.writer.write(line + b"\r\n")

    async def read_command(self) -> bytes | None:
        """One command with its literals, or ``None`` when the client went away."""
        data = bytearray()
        while True:
            line = await self.reader.readline()
            if not line:
                return None
            if not line.endswith(b"\n"):
                return None  # connection closed mid-line
            if not line.endswith(b"\r\n"):
                line = line[:-1] + b"\r\n"
            data += line
            match = _LITERAL_AT_END.search(line)
            if not match:
                return bytes(data[:-2])
            size = int(match.group(1))
            if size > MAX_LITERAL:
                self.send("* BAD literal too large")
                return b""
            if not match.group(2):  # synchronising literal: tell the client to go on
                self.send("+ Ready for literal data")
                await self.writer.drain()
            data += await self.reader.readexactly(size)

    async def run(self) -> None:
        self.send(f"* OK [CAPABILITY {self.caps}] Flask-MailConnect demo IMAP server ready")
        try:
            await self.writer.drain()
            while True:
                data = await self.read_command()
                if data is None:
                    break
                if not data:
                    continue
                keep_going = await self.handle(data)
                await self.writer.drain()
                if not keep_going:
                    break
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        finally:
            self.writer.close()
            with contextlib.suppress(ConnectionError, ssl.SSLError):
                await self.writer.wait_closed()

    # -- dispatch ----------------------------------------------------------------------------

    async def handle(self, data: bytes) -> bool:
        try:
            tokens = parse_command(data)
        except ParseError as exc:
            self.send(f"* BAD {exc}")
            return True
        if len(tokens) < 2 or not isinstance(tokens[0], str) or not isinstance(tokens[1], str):
            self.send("* BAD expected a tag and a command")
            return True
        tag, name, args = tokens[0], tokens[1].upper(), tokens[2:]
        uid = False
        if name == "UID" and args and isinstance(args[0], str):
            uid, name, args = True, args[0].upper(), args[1:]
            if name not in ("FETCH", "SEARCH", "STORE"):
                self.send(f"{tag} BAD UID {name} is not supported")
                return True
        handler = getattr(self, f"cmd_{name.lower()}", None)
        if handler is None:
            self.send(f"{tag} BAD unknown command {name}")
            return True
        needs = getattr(handler, "state", None)
        if needs == "auth" and self.mailbox is None:
            self.send(f"{tag} NO log in first")
            return True
        if needs == "selected" and self.selected is None:
            self.send(f"{tag} NO select a folder first")
            return True
        try:
            result = await handler(tag, args, uid) if uid else await handler(tag, args)
        except (ParseError, ValueError, TypeError, IndexError) as exc:
            self.send(f"{tag} BAD {name}: {exc or 'invalid arguments'}")
            return True
        if result is False:
            return False
        self._announce_new_mail()
        return True

    def _announce_new_mail(self) -> None:
        if self.selected is not None and len(self.selected.messages) > self.known_exists:
            self.known_exists = len(self.selected.messages)
            self.send(f"* {self.known_exists} EXISTS")

    # -- any state ---------------------------------------------------------------------------

    async def cmd_capability(self, tag: str, args: list[object]) -> None:
        self.send(f"* CAPABILITY {self.caps}")
        self.send(f"{tag} OK CAPABILITY completed")

    async def cmd_noop(self, tag: str, args: list[object]) -> None:
        self._announce_new_mail()
        self.send(f"{tag} OK NOOP completed")

    async def cmd_logout(self, tag: str, args: list[object]) -> bool:
        self.send("* BYE logging out")
        self.send(f"{tag} OK LOGOUT completed")
        return False

    # -- not authenticated -------------------------------------------------------------------

    def _authenticate(self, tag: str, username: str, password: str) -> None:
        mailbox = self.mailboxes.get(username.lower())
        if mailbox is None or mailbox.password != password or self.mailbox is not None:
            self.send(f"{tag} NO [AUTHENTICATIONFAILED] Invalid credentials")
            return
        self.mailbox = mailbox
        self.send(f"{tag} OK [CAPABILITY {self.caps}] Logged in")

    async def cmd_login(self, tag: str, args: list[object]) -> None:
        if len(args) != 2:
            raise ParseError("LOGIN needs a user name and a password")
        username, password = (_text(a) for a in args)
        self._authenticate(tag, username, password)

    async def cmd_authenticate(self, tag: str, args: list[object]) -> None:
        mechanism = str(args[0]).upper() if args else ""
        if mechanism == "XOAUTH2" and self.token_check is not None:
            await self._xoauth2(tag, args)
            return
        if mechanism != "PLAIN":
            self.send(f"{tag} NO unsupported authentication mechanism")
            return
        if len(args) > 1:
            response = _text(args[1]).encode("ascii")
        else:
            self.send("+ ")
            await self.writer.drain()
            response = (await self.reader.readline()).rstrip(b"\r\n")
        if response == b"*":
            self.send(f"{tag} BAD authentication cancelled")
            return
        try:
            decoded = base64.b64decode(response, validate=True).decode("utf-8")
            _authzid, username, password = decoded.split("\x00")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            self.send(f"{tag} BAD invalid PLAIN response")
            return
        self._authenticate(tag, username, password)

    async def _xoauth2(self, tag: str, args: list[object]) -> None:
        """``base64("user=" u "^Aauth=Bearer " token "^A^A")``, checked by ``token_check``."""
        assert self.token_check is not None
        if len(args) > 1:
            response = _text(args[1]).encode("ascii")
        else:
            self.send("+ ")
            await self.writer.drain()
            response = (await self.reader.readline()).rstrip(b"\r\n")
        try:
            fields = base64.b64decode(response, validate=True).decode("utf-8").split("\x01")
            user = fields[0].removeprefix("user=")
            token = fields[1].removeprefix("auth=Bearer ")
        except (binascii.Error, UnicodeDecodeError, IndexError):
            self.send(f"{tag} BAD invalid XOAUTH2 response")
            return
        mailbox = self.mailboxes.get(user.lower())
        check = self.token_check
        ok = mailbox is not None and self.mailbox is None
        if ok:
            loop = asyncio.get_running_loop()
            ok = await loop.run_in_executor(None, check, user, token)
        if not ok or mailbox is None:
            self.send(f"{tag} NO [AUTHENTICATIONFAILED] Invalid credentials")
            return
        self.mailbox = mailbox
        self.send(f"{tag} OK [CAPABILITY {self.caps}] Logged in")

    # -- authenticated -----------------------------------------------------------------------

    def _folder(self, name: object) -> Folder | None:
        assert self.mailbox is not None
        return self.mailbox.folder(_text(name))

    async def _select(self, tag: str, args: list[object], readonly: bool) -> None:
        command = "EXAMINE" if readonly else "SELECT"
        if len(args) != 1:
            raise ParseError(f"{command} needs one folder name")
        folder = self._folder(args[0])
        self.selected = None
        if folder is None:
            self.send(f"{tag} NO [NONEXISTENT] no such folder")
            return
        assert self.mailbox is not None
        with self.mailbox.lock:
            messages = list(folder.messages)
            self.selected, self.readonly = folder, readonly
            self.known_exists = len(messages)
            flags = " ".join(SYSTEM_FLAGS)
            self.send(f"* FLAGS ({flags})")
            self.send(f"* {len(messages)} EXISTS")
            self.send("* 0 RECENT")
            unseen = [i for i, m in enumerate(messages, 1) if "\\Seen" not in m.flags]
            if unseen:
                self.send(f"* OK [UNSEEN {unseen[0]}] first unseen message")
            self.send(f"* OK [UIDVALIDITY {folder.uidvalidity}] UIDs valid")
            self.send(f"* OK [UIDNEXT {folder.uidnext}] predicted next UID")
            permanent = "" if readonly else f"{flags} \\*"
            self.send(f"* OK [PERMANENTFLAGS ({permanent})] flags that stay")
        mode = "READ-ONLY" if readonly else "READ-WRITE"
        self.send(f"{tag} OK [{mode}] {command} completed")

    async def cmd_select(self, tag: str, args: list[object]) -> None:
        await self._select(tag, args, readonly=False)

    async def cmd_examine(self, tag: str, args: list[object]) -> None:
        await self._select(tag, args, readonly=True)

    cmd_select.state = cmd_examine.state = "auth"  # type: ignore[attr-defined]

    async def _list(self, tag: str, args: list[object], command: str) -> None:
        special_only = False
        if args and isinstance(args[0], list):  # LIST (SPECIAL-USE) "" "*"
            special_only = any(str(o).upper() == "SPECIAL-USE" for o in args[0])
            args = args[1:]
        if len(args) < 2:
            raise ParseError(f"{command} needs a reference and a pattern")
        reference, pattern = _text(args[0]), _text(args[1])
        if pattern == "":
            self.send(f'* {command} (\\Noselect) "/" ""')
            self.send(f"{tag} OK {command} completed")
            return
        glob = (reference + pattern).replace("%", "*")
        assert self.mailbox is not None
        for folder in self.mailbox.folders.values():
            if not fnmatchcase(folder.name.upper(), glob.upper()):
                continue
            if special_only and not folder.special_use:
                continue
            attrs = ["\\HasNoChildren"] + ([folder.special_use] if folder.special_use else [])
            self.send(f'* {command} ({" ".join(attrs)}) "/" {quote(folder.name).decode()}')
        self.send(f"{tag} OK {command} completed")

    async def cmd_list(self, tag: str, args: list[object]) -> None:
        await self._list(tag, args, "LIST")

    async def cmd_lsub(self, tag: str, args: list[object]) -> None:
        await self._list(tag, args, "LSUB")

    cmd_list.state = cmd_lsub.state = "auth"  # type: ignore[attr-defined]

    async def cmd_status(self, tag: str, args: list[object]) -> None:
        if len(args) != 2 or not isinstance(args[1], list):
            raise ParseError("STATUS needs a folder and a list of items")
        folder = self._folder(args[0])
        if folder is None:
            self.send(f"{tag} NO [NONEXISTENT] no such folder")
            return
        values = {
            "MESSAGES": len(folder.messages),
            "RECENT": 0,
            "UIDNEXT": folder.uidnext,
            "UIDVALIDITY": folder.uidvalidity,
            "UNSEEN": sum("\\Seen" not in m.flags for m in folder.messages),
        }
        items = []
        for item in args[1]:
            key = str(item).upper()
            if key not in values:
                raise ParseError(f"unknown STATUS item {key}")
            items.append(f"{key} {values[key]}")
        self.send(f"* STATUS {quote(folder.name).decode()} ({' '.join(items)})")
        self.send(f"{tag} OK STATUS completed")

    cmd_status.state = "auth"  # type: ignore[attr-defined]

    async def cmd_append(self, tag: str, args: list[object]) -> None:
        if len(args) < 2 or not isinstance(args[-1], bytes):
            raise ParseError("APPEND needs a folder and a message literal")
        folder = self._folder(args[0])
        if folder is None:
            self.send(f"{tag} NO [TRYCREATE] no such folder")
            return
        flags: list[str] = []
        when = None
        for extra in args[1:-1]:
            if isinstance(extra, list):
                flags = [_flag(f) for f in extra]
            elif isinstance(extra, str):
                when = datetime.strptime(extra, "%d-%b-%Y %H:%M:%S %z")
        assert self.mailbox is not None
        with self.mailbox.lock:
            folder.append(args[-1], flags, when)
        self.send(f"{tag} OK APPEND completed")

    cmd_append.state = "auth"  # type: ignore[attr-defined]

    # -- selected ----------------------------------------------------------------------------

    def _targets(self, sequence: object, uid: bool) -> list[tuple[int, Message]]:
        assert self.selected is not None
        messages = list(enumerate(self.selected.messages, 1))
        if not messages:
            return []
        if uid:
            wanted = parse_sequence_set(_text(sequence), messages[-1][1].uid)
            return [(seq, m) for seq, m in messages if m.uid in wanted]
        wanted = parse_sequence_set(_text(sequence), len(messages))
        if any(n < 1 or n > len(messages) for n in wanted):
            raise ParseError("message sequence number out of range")
        return [(seq, m) for seq, m in messages if seq in wanted]

    async def cmd_fetch(self, tag: str, args: list[object], uid: bool = False) -> None:
        if len(args) != 2:
            raise ParseError("FETCH needs a sequence set and items")
        items = args[1] if isinstance(args[1], list) else [args[1]]
        requested = [_text(item) for item in items]
        macros = {
            "ALL": ["FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE"],
            "FAST": ["FLAGS", "INTERNALDATE", "RFC822.SIZE"],
            "FULL": ["FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE"],
        }
        if len(requested) == 1 and requested[0].upper() in macros:
            requested = macros[requested[0].upper()]
        if uid and "UID" not in (r.upper() for r in requested):
            requested.insert(0, "UID")
        assert self.mailbox is not None
        with self.mailbox.lock:
            for seq, message in self._targets(args[0], uid):
                parts = [self._fetch_item(message, name) for name in requested]
                self.send(b"* %d FETCH (%s)" % (seq, b" ".join(parts)))
        self.send(f"{tag} OK FETCH completed")

    def _fetch_item(self, message: Message, raw_name: str) -> bytes:
        name = raw_name.upper()
        if name == "UID":
            return b"UID %d" % message.uid
        if name == "FLAGS":
            return b"FLAGS (%s)" % " ".join(sorted(message.flags)).encode()
        if name == "INTERNALDATE":
            return b'INTERNALDATE "%s"' % _imap_date(message.internaldate).encode()
        if name == "RFC822.SIZE":
            return b"RFC822.SIZE %d" % len(message.raw)
        if name == "ENVELOPE":
            return b"ENVELOPE " + envelope(message)
        if name in ("RFC822", "RFC822.HEADER", "RFC822.TEXT"):
            section = {"RFC822": "", "RFC822.HEADER": "HEADER", "RFC822.TEXT": "TEXT"}[name]
            if name != "RFC822.HEADER":
                self._mark_seen(message)
            return name.encode() + b" " + quote(section_bytes(message, section, None))
        match = _SECTION.match(raw_name)
        if not match:
            raise ParseError(f"unsupported FETCH item {raw_name}")
        kind, section, offset, length = match.groups()
        fields: list[str] | None = None
        spec = section.strip()
        if "(" in spec:
            head, _, rest = spec.partition("(")
            fields = rest.rstrip(")").split()
            spec = head.strip()
            label = f"{spec.upper()} ({' '.join(f.upper() for f in fields)})"
        else:
            label = spec.upper()
        data = section_bytes(message, spec, fields)
        key = f"BODY[{label}]"
        if offset is not None:
            start = int(offset)
            data = data[start : start + int(length)] if length is not None else data[start:]
            key += f"<{start}>"
        if kind.upper() == "BODY":
            self._mark_seen(message)
        return key.encode() + b" " + b"{%d}\r\n%s" % (len(data), data)

    def _mark_seen(self, message: Message) -> None:
        if not self.readonly:
            message.flags.add("\\Seen")

    cmd_fetch.state = "selected"  # type: ignore[attr-defined]

    async def cmd_search(self, tag: str, args: list[object], uid: bool = False) -> None:
        if len(args) >= 2 and str(args[0]).upper() == "CHARSET":
            args = args[2:]
        targets = self._targets("1:*", uid=False)
        keys = [str(a).upper() if isinstance(a, str) else a for a in args]
        matched = {seq for seq, _ in targets}
        i = 0
        while i < len(keys):
            key = keys[i]
            if key == "ALL":
                pass
            elif key in ("SEEN", "UNSEEN", "DELETED", "UNDELETED", "FLAGGED", "UNFLAGGED"):
                flag = "\\" + key.removeprefix("UN").capitalize()
                want = not key.startswith("UN")
                matched &= {s for s, m in targets if (flag in m.flags) == want}
            elif key == "UID":
                i += 1
                wanted = parse_sequence_set(_text(args[i]), targets[-1][1].uid if targets else 0)
                matched &= {s for s, m in targets if m.uid in wanted}
            elif isinstance(key, str) and re.fullmatch(r"[\d:*,]+", key):
                wanted = parse_sequence_set(key, len(targets))
                matched &= wanted
            else:
                raise ParseError(f"unsupported SEARCH key {key}")
            i += 1
        found = [m.uid if uid else s for s, m in targets if s in matched]
        self.send("* SEARCH" + "".join(f" {n}" for n in found))
        self.send(f"{tag} OK SEARCH completed")

    cmd_search.state = "selected"  # type: ignore[attr-defined]

    async def cmd_store(self, tag: str, args: list[object], uid: bool = False) -> None:
        if len(args) != 3:
            raise ParseError("STORE needs a sequence set, an action and flags")
        if self.readonly:
            self.send(f"{tag} NO folder is read-only")
            return
        action = _text(args[1]).upper()
        silent = action.endswith(".SILENT")
        action = action.removesuffix(".SILENT")
        if action not in ("FLAGS", "+FLAGS", "-FLAGS"):
            raise ParseError(f"unknown STORE action {action}")
        flags = {_flag(f) for f in (args[2] if isinstance(args[2], list) else [args[2]])}
        assert self.mailbox is not None
        with self.mailbox.lock:
            for seq, message in self._targets(args[0], uid):
                if action == "FLAGS":
                    message.flags = set(flags)
                elif action == "+FLAGS":
                    message.flags |= flags
                else:
                    message.flags -= flags
                if not silent:
                    current = " ".join(sorted(message.flags))
                    extra = f" UID {message.uid}" if uid else ""
                    self.send(f"* {seq} FETCH (FLAGS ({current}){extra})")
        self.send(f"{tag} OK STORE completed")

    cmd_store.state = "selected"  # type: ignore[attr-defined]

    def _expunge(self, announce: bool) -> None:
        assert self.selected is not None and self.mailbox is not None
        with self.mailbox.lock:
            messages = self.selected.messages
            for seq in range(len(messages), 0, -1):
                if "\\Deleted" in messages[seq - 1].flags:
                    del messages[seq - 1]
                    if announce:
                        self.send(f"* {seq} EXPUNGE")
            self.known_exists = len(messages)

    async def cmd_expunge(self, tag: str, args: list[object]) -> None:
        if self.readonly:
            self.send(f"{tag} NO folder is read-only")
            return
        self._expunge(announce=True)
        self.send(f"{tag} OK EXPUNGE completed")

    async def cmd_close(self, tag: str, args: list[object]) -> None:
        if not self.readonly:
            self._expunge(announce=False)
        self.selected = None
        self.send(f"{tag} OK CLOSE completed")

    cmd_expunge.state = cmd_close.state = "selected"  # type: ignore[attr-defined]


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, str):
        return value
    raise ParseError("expected a string")


def _flag(value: object) -> str:
    text = _text(value)
    for flag in SYSTEM_FLAGS:
        if text.lower() == flag.lower():
            return flag
    return text


class IMAPServer:
    """Serves ``mailboxes`` (keyed by lower-case user name) on an asyncio loop.

    ``await start()`` inside a running loop; ``await stop()`` closes the listener and every open
    client connection.
    """

    def __init__(
        self,
        mailboxes: dict[str, Mailbox],
        host: str = "127.0.0.1",
        port: int = 0,
        ssl_context: ssl.SSLContext | None = None,
        token_check: TokenCheck | None = None,
    ) -> None:
        self.mailboxes = {k.lower(): v for k, v in mailboxes.items()}
        self.token_check = token_check
        self.host = host
        self.port = port
        self.ssl_context = ssl_context
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._serve, self.host, self.port, ssl=self.ssl_context
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        try:
            await Session(reader, writer, self.mailboxes, self.token_check).run()
        finally:
            self._writers.discard(writer)
            self._tasks.discard(task)

    async def stop(self) -> None:
        """Stop listening, drop every client connection and wait for their sessions to end."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


__all__ = [
    "IMAPServer",
    "Mailbox",
    "Message",
    "Folder",
    "Session",
    "parse_command",
    "parse_sequence_set",
    "quote",
]

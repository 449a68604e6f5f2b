"""A private Dovecot (2.3) on 127.0.0.1: IMAPS and IMAP+STARTTLS, passwd-file users, maildirs.

Runs ``dovecot -F -c <conf>`` with everything (base_dir, state, logs, mail) in one temp dir, so
it never touches the system's Dovecot.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from . import MAILBOX_PASSWORD, MAILBOX_USER, free_port, require_peer, wait_for_port

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"


@dataclass
class DovecotPeer:
    """A running Dovecot: where it listens and who may log in."""

    host: str
    port: int  # IMAP with STARTTLS
    ssl_port: int  # IMAPS (implicit TLS)
    user: str
    password: str = field(repr=False)
    ca_file: str
    directory: Path
    process: subprocess.Popen | None = field(default=None, repr=False)
    #: True when XOAUTH2 / OAUTHBEARER logins are checked against an OAuth provider.
    oauth: bool = False

    @property
    def maildir(self) -> Path:
        return self.directory / "mail" / self.user / "Maildir"

    def log_text(self) -> str:
        path = self.directory / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""


def dovecot_available() -> str | None:
    """None when Dovecot can run here, else why not."""
    if not os.path.exists(DOVECOT):
        return f"{DOVECOT} not found (apt-get install -y dovecot-imapd)"
    return None


def _oauth2_passdb(peer: DovecotPeer) -> str:
    if not peer.oauth:
        return ""
    return f"""
# XOAUTH2 / OAUTHBEARER: the bearer token is checked by RFC 7662 introspection (POST).
passdb {{
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = {peer.directory}/dovecot-oauth2.conf.ext
}}
"""


def _oauth2_args(introspection_url: str, client_id: str, client_secret: str) -> str:
    # Dovecot's HTTP client sends the URL's user:password as HTTP Basic authentication.
    scheme, rest = introspection_url.split("://", 1)
    return (
        "introspection_mode = post\n"
        f"introspection_url = {scheme}://{quote(client_id, safe='')}:"
        f"{quote(client_secret, safe='')}@{rest}\n"
        "force_introspection = yes\n"
        "username_attribute = username\n"
        "active_attribute = active\n"
        "active_value = true\n"
        "timeout_msecs = 5000\n"
    )


def _config(peer: DovecotPeer, cert_file: str, key_file: str) -> str:
    d = peer.directory
    mechanisms = "plain login xoauth2 oauthbearer" if peer.oauth else "plain login"
    return f"""
# Written by tests/peers/dovecot.py for Dovecot 2.3.
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
info_log_path = {d}/dovecot.log
protocols = imap
listen = {peer.host}
ssl = yes
ssl_cert = <{cert_file}
ssl_key = <{key_file}
ssl_min_protocol = TLSv1.2
auth_mechanisms = {mechanisms}
auth_failure_delay = 0
# Dovecot counts 127.0.0.1 -> 127.0.0.1 as secure, so plaintext LOGIN would be allowed anyway.
disable_plaintext_auth = no
# The mail processes run as user "dovecot" (uid ~109); the default first_valid_uid (500)
# makes logins fail right after "Logged in".
first_valid_uid = 100
mail_location = maildir:~/Maildir
default_internal_user = dovecot
default_login_user = dovenull

# SPECIAL-USE (RFC 6154) attributes for the usual folders, when they exist (auto = no).
namespace inbox {{
  inbox = yes
  mailbox Sent {{
    special_use = \\Sent
  }}
  mailbox Archive {{
    special_use = \\Archive
  }}
  mailbox Trash {{
    special_use = \\Trash
  }}
  mailbox Drafts {{
    special_use = \\Drafts
  }}
}}

passdb {{
  driver = passwd-file
  mechanisms = plain login
  args = scheme=PLAIN username_format=%u {d}/passwd
}}
{_oauth2_passdb(peer)}userdb {{
  driver = static
  args = uid=dovecot gid=dovecot home={d}/mail/%u
}}

service imap-login {{
  inet_listener imap {{
    address = {peer.host}
    port = {peer.port}
  }}
  inet_listener imaps {{
    address = {peer.host}
    port = {peer.ssl_port}
    ssl = yes
  }}
}}
# After a failed login (XOAUTH2 included), anvil delays the next ones from the same address
# (2 s, 4 s...): no listener, no penalty.
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
"""


def start_dovecot(
    *,
    cert_file: str,
    key_file: str,
    ca_file: str,
    user: str = MAILBOX_USER,
    password: str = MAILBOX_PASSWORD,
    introspection: Any = None,
) -> DovecotPeer:
    """Start Dovecot and wait until both ports accept connections; raises RuntimeError.

    ``introspection`` (a tests.peers.oauth.Introspection) turns on XOAUTH2 and OAUTHBEARER,
    checked against the OAuth provider, next to the passwd-file password logins.
    """
    if ":" in password or "\n" in password:
        raise ValueError("passwd-file passwords cannot hold ':' or line breaks")
    directory = Path(tempfile.mkdtemp(prefix="mailconnect-dovecot-"))
    # mkdtemp makes 0700; Dovecot's auth and mail processes (user "dovecot") must traverse it.
    directory.chmod(0o755)
    peer = DovecotPeer("127.0.0.1", free_port(), free_port(), user, password, ca_file, directory)
    for sub in ("run", "state"):
        (directory / sub).mkdir()
    (directory / "passwd").write_text(f"{user}:{{PLAIN}}{password}::::::\n", encoding="utf-8")
    (directory / "passwd").chmod(0o644)
    for sub in ("new", "cur", "tmp"):
        (peer.maildir / sub).mkdir(parents=True)
    if introspection is not None:
        peer.oauth = True
        args = directory / "dovecot-oauth2.conf.ext"
        args.write_text(
            _oauth2_args(introspection.url, introspection.client_id, introspection.client_secret)
        )
        args.chmod(0o644)  # read by the auth process
    subprocess.run(["chown", "-R", "dovecot:dovecot", str(directory / "mail")], check=True)
    conf = directory / "dovecot.conf"
    conf.write_text(_config(peer, cert_file, key_file))
    peer.process = subprocess.Popen(
        [DOVECOT, "-F", "-c", str(conf)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    if not (wait_for_port(peer.host, peer.port) and wait_for_port(peer.host, peer.ssl_port)):
        log = peer.log_text()
        stop_dovecot(peer)
        raise RuntimeError(f"Dovecot did not start: {log[-2000:]}")
    return peer


def stop_dovecot(peer: DovecotPeer) -> None:
    process = peer.process
    if process is not None and process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
    peer.process = None
    # Give child processes a moment to release files before removing the directory.
    time.sleep(0.05)
    shutil.rmtree(peer.directory, ignore_errors=True)


def dovecot_peer(
    *,
    cert_file: str,
    key_file: str,
    ca_file: str,
    password: str = MAILBOX_PASSWORD,
    introspection: Any = None,
) -> Iterator[DovecotPeer]:
    """For a fixture: start an extra Dovecot (skip, or fail under MAILCONNECT_REQUIRE_PEERS=1,
    when it cannot run), yield it, stop it at teardown."""
    reason = dovecot_available()
    if reason is None and os.geteuid() != 0:
        reason = "the test config runs Dovecot as root (mail processes as user dovecot)"
    if reason is not None:
        require_peer("dovecot", reason)
    try:
        peer = start_dovecot(
            cert_file=cert_file,
            key_file=key_file,
            ca_file=ca_file,
            password=password,
            introspection=introspection,
        )
    except Exception as exc:  # any start failure is "peer unavailable"
        require_peer("dovecot", f"could not start: {exc}")
    try:
        yield peer
    finally:
        stop_dovecot(peer)

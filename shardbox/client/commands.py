"""The user commands of `shardbox` (click): login, upload, download, ls, mkdir, mv, rm, share.

Every command takes `--json` (before or after the command name): the answer is then one
JSON document on stdout, errors included (`{"error": {"code", "message"}}`, exit status 1),
and no progress bar is drawn. Without it, people get short sentences and progress bars on
stderr.
"""

from __future__ import annotations

import asyncio
import functools
import getpass
import json
import socket
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import click

from shardbox.client import credentials, remote
from shardbox.client.api import ApiError, ProductClient, normalise_server
from shardbox.client.chunking import FileChanged
from shardbox.client.credentials import Credentials, NotLoggedIn
from shardbox.client.downloader import download as download_file
from shardbox.client.progress import Bars
from shardbox.client.uploader import RateLimiter, Uploader


class CommandFailed(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _wants_json(ctx: click.Context) -> bool:
    while ctx is not None:
        if ctx.params.get("as_json") or (ctx.obj or {}).get("json"):
            return True
        ctx = ctx.parent
    return False


def _emit(ctx: click.Context, doc: Any, human: str | None) -> None:
    if _wants_json(ctx):
        click.echo(json.dumps(doc, indent=2, sort_keys=True))
    elif human:
        click.echo(human)


def _fail(ctx: click.Context, code: str, message: str) -> None:
    if _wants_json(ctx):
        click.echo(json.dumps({"error": {"code": code, "message": message}}, indent=2))
    else:
        click.echo(f"shardbox: {message}" if code in ("", "Error") else f"shardbox: {code}: {message}",
                   err=True)
    ctx.exit(1)


json_option = click.option("--json", "as_json", is_flag=True, help="print one JSON document")


def command(group: click.Group, name: str | None = None, **kwargs) -> Callable:
    """A user command: gets --json, runs its coroutine, turns failures into one clear message."""
    def wrap(fn: Callable[..., Awaitable[Any]]) -> click.Command:
        @group.command(name, **kwargs)
        @json_option
        @click.pass_context
        @functools.wraps(fn)
        def run(ctx: click.Context, as_json: bool, **params: Any) -> None:
            try:
                asyncio.run(fn(ctx, **params))
            except ApiError as exc:
                _fail(ctx, exc.code, exc.message or f"HTTP {exc.status}")
            except CommandFailed as exc:
                _fail(ctx, exc.code, exc.message)
            except NotLoggedIn as exc:
                _fail(ctx, "NotLoggedIn", str(exc))
            except remote.NotFound as exc:
                _fail(ctx, "NotFound", str(exc))
            except (ValueError, FileChanged) as exc:
                _fail(ctx, "InvalidArgument", str(exc))
            except (aiohttp.ClientError, ConnectionError, TimeoutError) as exc:
                _fail(ctx, "ConnectionFailed", f"cannot reach the server: {exc or type(exc).__name__}")
            except OSError as exc:
                _fail(ctx, "LocalError", str(exc))
        return run
    return wrap


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--json", "as_json", is_flag=True, help="print one JSON document (any command)")
@click.pass_context
def user_cli(ctx: click.Context, as_json: bool) -> None:
    """Use a shardbox server: upload, download, organise and share your files."""
    ctx.ensure_object(dict)["json"] = as_json


def _client() -> tuple[ProductClient, Credentials]:
    creds = credentials.load()
    return ProductClient(creds.server, creds.token), creds


# accounts ---------------------------------------------------------------------------------------

@command(user_cli, "login")
@click.argument("url")
@click.option("--username", "-u", help="your user name (asked for when omitted)")
@click.option("--password-stdin", is_flag=True, help="read the password from standard input")
@click.option("--token", help="use this API token instead of a password")
async def login(ctx: click.Context, url: str, username: str | None, password_stdin: bool,
                token: str | None) -> None:
    """Log in to the server at URL and keep an API token for the other commands."""
    server = normalise_server(url)
    if token:
        async with ProductClient(server, token) as client:
            me = (await client.me())["user"]
        creds = Credentials(server=server, token=token, user=me["name"], tenant=me.get("tenant"))
    else:
        if not username:
            username = click.prompt("user name", err=True)
        if password_stdin:
            password = sys.stdin.readline().rstrip("\r\n")
        else:
            password = getpass.getpass("password: ", stream=sys.stderr)
        async with ProductClient(server) as anon:
            session = await anon.login(username, password)
        async with ProductClient(server, session["token"]) as client:
            # A named, revocable API token outlives the login session; the session ends here.
            made = await client.create_token(f"shardbox CLI on {socket.gethostname()}")
            try:
                await client.logout()
            except ApiError:
                pass
        user = session.get("user") or {}
        creds = Credentials(server=server, token=made["token"], token_id=str(made.get("id", "")) or None,
                            user=user.get("name", username), tenant=user.get("tenant"))
    path = credentials.save(creds)
    _emit(ctx, {"server": creds.server, "user": creds.user, "tenant": creds.tenant,
                "credentials": str(path)},
          f"logged in to {creds.server} as {creds.user}"
          + (f" (tenant {creds.tenant})" if creds.tenant else "") + f"; credentials in {path}")


@command(user_cli, "logout")
async def logout(ctx: click.Context) -> None:
    """Revoke this machine's API token and forget it."""
    try:
        creds = credentials.load()
    except NotLoggedIn:
        _emit(ctx, {"logged_out": False}, "not logged in")
        return
    revoked = False
    if creds.token_id:
        async with ProductClient(creds.server, creds.token) as client:
            try:
                await client.revoke_token(creds.token_id)
                revoked = True
            except ApiError as exc:
                if exc.status not in (401, 404):
                    raise
    credentials.forget()
    _emit(ctx, {"logged_out": True, "token_revoked": revoked}, f"logged out of {creds.server}")


@command(user_cli, "whoami")
async def whoami(ctx: click.Context) -> None:
    """Who the stored credentials belong to."""
    client, creds = _client()
    async with client:
        answer = await client.me()
    me = answer["user"]
    _emit(ctx, {**answer, "server": creds.server}, f"{me['name']} on {creds.server}"
          + (f" (tenant {me['tenant']})" if me.get("tenant") else ""))


# transfers --------------------------------------------------------------------------------------

def _rate(text: str | None) -> float | None:
    if not text:
        return None
    units = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    t = text.strip().lower().removesuffix("/s").removesuffix("b").removesuffix("i")
    num, unit = (t[:-1], t[-1]) if t and t[-1] in "kmg" else (t, "")
    try:
        value = float(num) * units[unit]
    except ValueError:
        raise ValueError(f"--limit-rate {text!r}: use bytes per second like 500k, 2M or 1G") from None
    if value <= 0:
        raise ValueError("--limit-rate must be positive")
    return value


@command(user_cli, "upload")
@click.argument("files", nargs=-1, required=True,
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--to", "folder", default="/", show_default=True, help="remote folder to upload into")
@click.option("--streams", default=4, show_default=True, type=click.IntRange(1, 32),
              help="chunks sent in parallel")
@click.option("--limit-rate", help="cap on bytes per second over all streams (e.g. 2M)")
async def upload(ctx: click.Context, files: tuple[Path, ...], folder: str, streams: int,
                 limit_rate: str | None) -> None:
    """Upload FILES into a folder. Resumes an interrupted upload; sends nothing the server already has."""
    client, creds = _client()
    rate = _rate(limit_rate)
    results = []
    async with client:
        chunk_size = int((await client.info())["chunk_size"])
        uploader = Uploader(client, creds.user, streams=streams, chunk_size=chunk_size,
                            limiter=RateLimiter(rate) if rate else None)
        with Bars(not _wants_json(ctx)) as bars:
            for local in files:
                target = remote.join(folder, local.name)
                tracker = bars.track(local.name, local.stat().st_size)
                results.append(await uploader.upload(local, target, tracker))
    lines = []
    for r in results:
        how = ("already stored, no chunk sent" if r.chunks and not r.chunks_sent
               else f"{r.chunks_sent} of {r.chunks} chunks sent" + (" (resumed)" if r.resumed else ""))
        lines.append(f"{r.local} -> {r.path} ({_size(r.size)}; {how})")
    _emit(ctx, {"uploads": [r.as_json() for r in results]}, "\n".join(lines))


@command(user_cli, "download")
@click.argument("path")
@click.argument("dest", required=False, type=click.Path(path_type=Path))
async def download(ctx: click.Context, path: str, dest: Path | None) -> None:
    """Download the file at PATH (to DEST, a file or folder; default: here, same name)."""
    client, _ = _client()
    async with client:
        entry = await remote.resolve(client, path)
        if entry.get("type") == "folder":
            raise CommandFailed("IsAFolder", f"{remote.normalise(path)} is a folder; download its files")
        target = dest or Path(entry["name"])
        if target.is_dir():
            target = target / entry["name"]
        with Bars(not _wants_json(ctx)) as bars:
            tracker = bars.track(entry["name"], entry.get("size", 0))
            result = await download_file(client, entry, target, tracker)
    result.path = entry.get("path", remote.normalise(path))
    _emit(ctx, result.as_json(), f"{result.path} -> {result.local} ({_size(result.size)})")


# files and folders ------------------------------------------------------------------------------

def _size(n: int | None) -> str:
    if n is None:
        return "-"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


@command(user_cli, "ls")
@click.argument("path", default="/")
async def ls(ctx: click.Context, path: str) -> None:
    """List a folder (default: the top of your drive)."""
    client, _ = _client()
    async with client:
        folder = remote.normalise(path)
        entry = await remote.resolve(client, folder)
        items = [entry] if entry.get("type") == "file" else await remote.list_all(client, folder)
    rows = []
    for item in items:
        name = item.get("name", "") + ("/" if item.get("type") == "folder" else "")
        status = item.get("status") or ""
        rows.append(f"{_size(item.get('size')) if item.get('type') != 'folder' else '-':>10}  "
                    f"{str(item.get('updated_at') or '')[:19]:19}  {status:11} {name}")
    _emit(ctx, {"path": folder, "items": items}, "\n".join(rows) if rows else f"{folder} is empty")


@command(user_cli, "mkdir")
@click.argument("path")
async def mkdir(ctx: click.Context, path: str) -> None:
    """Create a folder."""
    client, _ = _client()
    async with client:
        made = await client.mkdir(remote.normalise(path))
    _emit(ctx, made, f"created {made['path']}/")


@command(user_cli, "mv")
@click.argument("src")
@click.argument("dst")
async def mv(ctx: click.Context, src: str, dst: str) -> None:
    """Rename or move SRC; into DST when DST is a folder."""
    client, _ = _client()
    async with client:
        entry = await remote.resolve(client, src)
        if entry.get("id") is None:
            raise CommandFailed("InvalidArgument", "the top folder cannot be moved")
        try:
            target = await remote.resolve(client, dst)
        except remote.NotFound:
            target = None
        if target is not None and target.get("type") == "folder":
            new_path = remote.join(target["path"], entry["name"])
        else:
            new_path = remote.normalise(dst)
        changed = await client.update(str(entry["id"]), {"path": new_path})
    _emit(ctx, changed, f"{entry['path']} -> {changed['path']}")


@command(user_cli, "rm")
@click.argument("paths", nargs=-1, required=True)
async def rm(ctx: click.Context, paths: tuple[str, ...]) -> None:
    """Move files or folders to the trash (restorable from the web page for a while)."""
    client, _ = _client()
    removed = []
    async with client:
        for path in paths:
            entry = await remote.resolve(client, path)
            if entry.get("id") is None:
                raise CommandFailed("InvalidArgument", "the top folder cannot be removed")
            await client.delete(str(entry["id"]))
            removed.append({"id": entry["id"], "path": entry.get("path", remote.normalise(path))})
    _emit(ctx, {"trashed": removed}, "\n".join(f"moved {r['path']} to the trash" for r in removed))


# share links ------------------------------------------------------------------------------------

class ShareGroup(click.Group):
    """`share FILE ...` creates a link; `share ls` and `share revoke ID` manage them."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        lead = 0
        while lead < len(args) and args[lead] == "--json":
            lead += 1
        rest = args[lead:]
        if rest and rest[0] not in self.commands and rest[0] not in ("-h", "--help"):
            args = [*args[:lead], "create", *rest]
        return super().parse_args(ctx, args)


@user_cli.group("share", cls=ShareGroup)
@json_option
@click.pass_context
def share(ctx: click.Context, as_json: bool) -> None:
    """Share a file by link: `share FILE --view|--download`, `share ls`, `share revoke ID`."""


def _link_line(link: dict) -> str:
    parts = [str(link.get("id")), link.get("permission", "")]
    target = link.get("file") or {}
    parts.append(target.get("path") or target.get("name") or "")
    parts.append(f"expires {link['expires_at']}" if link.get("expires_at") else "no expiry")
    if link.get("max_downloads") is not None:
        parts.append(f"{link.get('downloads', 0)}/{link['max_downloads']} downloads")
    else:
        parts.append(f"{link.get('downloads', 0)} downloads")
    if link.get("has_password"):
        parts.append("password")
    return "  ".join(p for p in parts if p)


@command(share, "create")
@click.argument("path")
@click.option("--view", "permission", flag_value="view", help="recipients can preview, not download")
@click.option("--download", "permission", flag_value="download", help="recipients can download")
@click.option("--expires", help="lifetime (7d, 12h, 30m, 2w) or an ISO 8601 time")
@click.option("--password", "ask_password", is_flag=True, help="ask for a password the recipient must give")
@click.option("--password-stdin", is_flag=True, help="read that password from standard input")
@click.option("--max-downloads", type=click.IntRange(min=1), help="stop after this many downloads")
async def share_create(ctx: click.Context, path: str, permission: str | None, expires: str | None,
                       ask_password: bool, password_stdin: bool, max_downloads: int | None) -> None:
    """Make a link to PATH (a file or folder); the URL is shown this once."""
    if permission is None:
        raise CommandFailed("InvalidArgument", "say what the link allows: --view or --download")
    password = None
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif ask_password:
        password = getpass.getpass("link password: ", stream=sys.stderr)
        if getpass.getpass("again: ", stream=sys.stderr) != password:
            raise CommandFailed("InvalidArgument", "the two passwords differ")
    if password is not None and not password:
        raise CommandFailed("InvalidArgument", "an empty password protects nothing")
    expires_at = remote.expiry(expires) if expires else None
    client, _ = _client()
    async with client:
        entry = await remote.resolve(client, path)
        if entry.get("id") is None:
            raise CommandFailed("InvalidArgument", "share a file or a folder, not the whole drive")
        link = await client.create_share(str(entry["id"]), permission, expires_at=expires_at,
                                         password=password, max_downloads=max_downloads)
    link.setdefault("file", {"id": entry["id"], "name": entry.get("name"), "path": entry.get("path")})
    _emit(ctx, link, f"{link['url']}\n({_link_line(link)}; the link is shown only now)")


@command(share, "ls")
async def share_ls(ctx: click.Context) -> None:
    """List your active links (never their tokens)."""
    client, _ = _client()
    async with client:
        answer = await client.list_shares()
    links = answer.get("links", answer.get("items", []))
    _emit(ctx, {"links": links}, "\n".join(_link_line(x) for x in links) if links else "no active links")


@command(share, "revoke")
@click.argument("link_id")
async def share_revoke(ctx: click.Context, link_id: str) -> None:
    """Revoke one link; the others keep working."""
    client, _ = _client()
    async with client:
        await client.revoke_share(link_id)
    _emit(ctx, {"revoked": link_id}, f"revoked link {link_id}")


def main(argv: list[str]) -> int:
    """Entry from shardbox.cli for the user commands; returns the exit status."""
    try:
        user_cli.main(args=argv, prog_name="shardbox", standalone_mode=True)
    except SystemExit as exc:
        return int(exc.code or 0) if not isinstance(exc.code, str) else 1
    return 0

"""`shardbox admin ...`: user and key management through the coordinator's admin API.

The coordinator's address and the cluster secret come from a `shardbox up` data
directory (its config/cluster.json) or from any role's config file of a cluster.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from config.settings import ConfigError, load_config


def _target(args: argparse.Namespace) -> tuple[str, str]:
    """(coordinator base URL, cluster secret) for this invocation."""
    if args.config:
        cfg = load_config(args.config)
        if cfg.coordinator is not None:
            return f"http://{cfg.coordinator.listen}", cfg.cluster.secret
        if cfg.gateway is not None:
            return cfg.gateway.coordinator, cfg.cluster.secret
        if cfg.node is not None and cfg.node.coordinator:
            return cfg.node.coordinator, cfg.cluster.secret
        raise ConfigError(f"{args.config}: no coordinator address in this config")
    data = Path(args.data or "./data")
    state_file = data / "config" / "cluster.json"
    if not state_file.exists():
        raise ConfigError(f"{state_file} not found: is {data} the --data directory of a `shardbox up`?")
    state = json.loads(state_file.read_text())
    return f"http://{state['host']}:{int(state['port']) + 1}", state["secret"]


def read_password(prompt: str = "password: ") -> str:
    """A new password: asked twice on a terminal, else one line of standard input."""
    import getpass

    if sys.stdin.isatty():
        first = getpass.getpass(prompt)
        if getpass.getpass("again: ") != first:
            raise ConfigError("the two passwords differ")
    else:
        first = sys.stdin.readline().rstrip("\r\n")
    if not first:
        raise ConfigError("the password must not be empty")
    return first


def _password_hash() -> str:
    from gateway.api.passwords import hash_password

    try:
        return hash_password(read_password())
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


async def _admin(args: argparse.Namespace) -> int:
    from coordinator.client import CoordinatorClient
    from coordinator.records import CoordinatorError

    url, secret = _target(args)
    client = CoordinatorClient(url, secret)
    try:
        if args.admin_command == "user" and args.action == "add":
            password_hash = _password_hash() if args.password else None
            await client.create_user(args.tenant, args.name, is_admin=args.admin)
            key = await client.create_key(args.name)
            if password_hash is not None:
                await client.set_password(args.name, password_hash)
            print(f"user {args.name} (tenant {args.tenant}) created"
                  + (" with a password" if password_hash else ""))
            print(f"access key: {key.access_key}\nsecret key: {key.secret_key}")
        elif args.admin_command == "user" and args.action == "password":
            await client.set_password(args.name, _password_hash())
            print(f"password of {args.name} set; their web sessions have ended")
        elif args.admin_command == "user" and args.action == "list":
            for user in await client.list_users():
                flag = " (admin)" if user.get("is_admin") else ""
                print(f"{user['name']}\ttenant={user.get('tenant', '')}\tkeys={user.get('keys', '')}{flag}")
        elif args.admin_command == "key" and args.action == "add":
            key = await client.create_key(args.user)
            print(f"access key: {key.access_key}\nsecret key: {key.secret_key}")
        elif args.admin_command in ("events", "scan", "audit", "gc"):
            from shardbox.admin_pipeline import run_command
            return await run_command(client, args)
        return 0
    except CoordinatorError as exc:
        print(f"shardbox admin: {exc.code}: {exc.message}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"shardbox admin: cannot reach the coordinator at {url}: {exc}", file=sys.stderr)
        return 1
    finally:
        await client.close()


def run_admin(args: argparse.Namespace) -> int:
    return asyncio.run(_admin(args))

"""The `shardbox` user client: log in to a gateway, upload, download, organise and share files.

It speaks only the product API (/api/v1, see docs/internals.md) over HTTP, like any outside
client would; nothing here imports a server role.
"""

# The commands this package serves; shardbox/cli.py hands them over without importing the rest.
USER_COMMANDS = ("login", "logout", "whoami", "upload", "download", "ls", "mkdir", "mv", "rm", "share")

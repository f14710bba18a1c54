"""The product's tunable rules, from the `[coordinator]` section (config/settings.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ProductRules:
    upload_expiry_s: float = 86400.0          # an unfinished product upload is kept this long
    trash_retention_s: float = 30 * 86400.0   # a file in the trash can be restored this long
    login_window_s: float = 900.0             # attempts are counted per window of this length
    login_attempts_per_user_address: int = 10  # one user name from one client address
    login_attempts_per_address: int = 100      # any user names from one client address
    link_password_attempts: int = 20          # one share link's password from one address

    @classmethod
    def from_section(cls, section: Any) -> ProductRules:
        return cls(
            upload_expiry_s=section.product_upload_expiry_s,
            trash_retention_s=section.trash_retention_s,
            login_window_s=section.login_window_s,
            login_attempts_per_user_address=section.login_attempts_per_user_address,
            login_attempts_per_address=section.login_attempts_per_address,
            link_password_attempts=section.link_password_attempts,
        )

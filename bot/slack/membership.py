"""Who is who: operators and approvers from user ids or user groups, and who is a bot.

A user group (S…) is expanded with `usergroups.users.list` and cached for `ttl_s`. Free
workspaces lack user groups (`paid_teams_only`) and a token may lack `usergroups:read`: then only
the user ids listed explicitly count, and the log says so once. A failed refresh keeps the last
known members rather than locking everyone out.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

log = logging.getLogger(__name__)

# Errors that mean "this workspace or token cannot list user groups", not "try again".
NO_GROUPS = frozenset({"paid_teams_only", "missing_scope", "not_allowed_token_type",
                       "no_permission", "feature_not_enabled"})


@dataclass
class _Cached:
    members: frozenset[str]
    until: float


class Membership:
    """Resolves user-group ids to members, with a TTL cache, and tells bots from people."""

    def __init__(self, client: WebClient, *, ttl_s: float = 300.0,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.client = client
        self.ttl_s = ttl_s
        self._now = monotonic
        self._lock = threading.Lock()
        self._groups: dict[str, _Cached] = {}
        self._bots: dict[str, bool] = {}
        self._groups_unavailable: str | None = None

    def expand(self, principals: Iterable[str]) -> frozenset[str]:
        """The user ids named by a list of user ids and user-group ids."""
        users: set[str] = set()
        for principal in principals:
            users |= self._group(principal) if principal.startswith("S") else {principal}
        return frozenset(users)

    def includes(self, principals: Iterable[str], user: str) -> bool:
        """Tell whether a user is one of the principals (directly or through a group)."""
        principals = list(principals)
        return user in principals or user in self.expand(principals)

    def refresh(self, principals: Iterable[str]) -> None:
        """Re-read every group among the principals now (start-up and periodic warm-up)."""
        for principal in principals:
            if principal.startswith("S"):
                self._group(principal, force=True)

    def is_bot(self, user: str) -> bool:
        """True for bots and apps (they never approve); people are looked up once."""
        with self._lock:
            known = self._bots.get(user)
        if known is not None:
            return known
        try:
            info = self.client.users_info(user=user)["user"]
        except SlackApiError as exc:
            # An account we cannot look up is not counted as a person: bots never approve.
            log.warning("users.info %s failed (%s): not counted as a person", user,
                        exc.response.get("error"))
            return True
        bot = bool(info.get("is_bot") or info.get("is_app_user") or user == "USLACKBOT")
        with self._lock:
            self._bots[user] = bot
        return bot

    def _group(self, group: str, *, force: bool = False) -> frozenset[str]:
        now = self._now()
        with self._lock:
            cached = self._groups.get(group)
            if self._groups_unavailable is not None:
                return frozenset()
        if cached is not None and cached.until > now and not force:
            return cached.members
        try:
            members = frozenset(self.client.usergroups_users_list(usergroup=group)["users"])
        except SlackApiError as exc:
            return self._fallback(group, cached, str(exc.response.get("error")))
        except OSError as exc:  # network trouble: keep what we knew
            return self._fallback(group, cached, type(exc).__name__)
        with self._lock:
            self._groups[group] = _Cached(members, now + self.ttl_s)
        return members

    def _fallback(self, group: str, cached: _Cached | None, error: str) -> frozenset[str]:
        if error in NO_GROUPS:
            with self._lock:
                first = self._groups_unavailable is None
                self._groups_unavailable = error
            if first:
                log.warning("user groups cannot be read (%s): only the user ids listed in the "
                            "configuration count as operators and approvers; list people by "
                            "user id (U…) on this workspace", error)
            return frozenset()
        log.warning("could not read user group %s (%s); %s", group, error,
                    "keeping its last known members" if cached else "it counts as empty for now")
        return cached.members if cached is not None else frozenset()

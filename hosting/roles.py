"""Who may do what on a shared server. Pure policy: no gradio, no files.

Roles: admin (everything: train, load/unload models, manage every job), member (evaluate, chat, vote, score; train
when the admin allows it), guest (chat, blind votes and scoring only). Without any login configured the app has one
local user, "local", with the admin role (a single-user install on one's own machine).
"""

from __future__ import annotations

from dataclasses import dataclass

ROLES = ("admin", "member", "guest")
# export_votes: every vote's prompt and conversations, whoever cast it: the admin only (others see the leaderboard).
ACTIONS = ("score", "chat", "vote", "evaluate", "train", "manage_models", "manage_all_jobs", "export_votes")
LOCAL_USER = "local"

_ALLOWED = {
    "admin": set(ACTIONS),
    "member": {"score", "chat", "vote", "evaluate"},
    "guest": {"score", "chat", "vote"},
}


@dataclass(frozen=True)
class User:
    name: str
    role: str

    def __post_init__(self):
        if self.role not in ROLES:
            raise ValueError(f"role {self.role!r} of user {self.name!r} is not one of {', '.join(ROLES)}")


@dataclass(frozen=True)
class Policy:
    members_can_train: bool = False

    def can(self, user: User, action: str) -> bool:
        if action not in ACTIONS:
            raise ValueError(f"unknown action {action!r}")
        if action == "train" and user.role == "member":
            return self.members_can_train
        return action in _ALLOWED[user.role]

    def can_manage_job(self, user: User, owner: str) -> bool:
        """Cancel / resume: one's own jobs, or any job for the admin."""
        return user.name == owner or self.can(user, "manage_all_jobs")

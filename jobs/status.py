"""The one set of states a job is in, as the queue database, the tabs, the CLI and the API show it.

A training job's process also writes a finer *stage* into its status.json (created, starting, loading, training,
saving, stopping, then completed / failed / stopped): what it is doing inside RUNNING. `from_stage` is the one
translation between the two, so "stopped" in a job folder and "cancelled" in the list are the same thing by rule,
not by a second vocabulary kept in step by hand.
"""

from __future__ import annotations

from enum import StrEnum


class JobStatus(StrEnum):
    QUEUED = "queued"  # waiting for a free slot
    RUNNING = "running"  # its work goes on (in a worker thread, a job process, or a CLI process)
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"  # stopped on request; a training job kept its last checkpoint
    INTERRUPTED = "interrupted"  # cut off without a word (the app or the machine went down): Resume continues it

    @property
    def active(self) -> bool:
        return self in ACTIVE

    @property
    def final(self) -> bool:
        return self in FINAL


ACTIVE = (JobStatus.QUEUED, JobStatus.RUNNING)
FINAL = (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED)
RESUMABLE = (JobStatus.INTERRUPTED, JobStatus.CANCELLED, JobStatus.FAILED)

# The stages a training job process writes in status.json; the last three end it.
STAGE_DONE = ("completed", "failed", "stopped")
_STAGE_TO_STATUS = {"completed": JobStatus.COMPLETED, "failed": JobStatus.FAILED, "stopped": JobStatus.CANCELLED}


def from_stage(stage: str | None, alive: bool) -> JobStatus:
    """The JobStatus of a training job from its status.json stage and whether its process holds the job's lock."""
    if stage in _STAGE_TO_STATUS:
        return _STAGE_TO_STATUS[stage]
    if alive:
        return JobStatus.RUNNING
    # Not finished, and no process holds it: never started ("created"), or cut off (killed with the app, a reboot).
    return JobStatus.QUEUED if stage == "created" else JobStatus.INTERRUPTED

"""Keep macOS from napping the app or idling the system to sleep while a long job runs.

App Nap throttles a window that is hidden or behind others (timers coalesced, the process slowed), and
idle sleep stops an overnight index; an `NSProcessInfo` activity marked user-initiated (which includes
"idle system sleep disabled") holds both off until the job ends. Nothing to do on other platforms.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol

# NSActivityUserInitiated = 0x00FFFFFF | NSActivityIdleSystemSleepDisabled (1 << 20), from NSProcessInfo.h.
NS_ACTIVITY_IDLE_SYSTEM_SLEEP_DISABLED = 1 << 20
NS_ACTIVITY_USER_INITIATED = 0x00FFFFFF | NS_ACTIVITY_IDLE_SYSTEM_SLEEP_DISABLED


class ProcessInfo(Protocol):
    """The two methods of Foundation's NSProcessInfo that an activity needs (pyobjc spelling)."""

    def beginActivityWithOptions_reason_(self, options: int, reason: str) -> Any: ...
    def endActivity_(self, token: Any) -> None: ...


def macos_process_info() -> ProcessInfo | None:
    """`NSProcessInfo.processInfo()` through pyobjc on macOS; None elsewhere or without pyobjc."""
    if sys.platform != "darwin":
        return None
    try:
        from Foundation import NSProcessInfo  # pyobjc-framework-Cocoa, a darwin-only dependency
    except ImportError:
        return None
    return NSProcessInfo.processInfo()


@contextmanager
def job_activity(
    reason: str, process_info: Callable[[], ProcessInfo | None] = macos_process_info
) -> Iterator[bool]:
    """Hold a user-initiated activity for the `with` block; yields whether one is held (False off macOS)."""
    info = process_info()
    if info is None:
        yield False
        return
    token = info.beginActivityWithOptions_reason_(NS_ACTIVITY_USER_INITIATED, reason)
    try:
        yield True
    finally:
        info.endActivity_(token)

"""Playing a finished run back in its recorded timing: play / pause, speed, the step timer.

The run screen owns the widgets; ``PlaybackController`` owns the clock. It moves
the steps list's cursor one step at a time, each step staying on screen for its
recorded duration divided by the speed (a recorded pause longer than
``MAX_GAP_S`` is shortened to it; a log without timing, such as an imported
markdown log, plays at ``FIXED_PACE_S`` a step at 1x), and tells the screen
when its state changed so the status bar and the scrubber are redrawn.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from textual.timer import Timer

from agentdeck.tui.stepindex import StepIndex

SPEEDS = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0)
#: A recorded pause longer than this is shortened to it when playing back.
MAX_GAP_S = 10.0
#: Seconds a step takes at 1x when the log has no timing (imported markdown).
FIXED_PACE_S = 1.0


class TimerHost(Protocol):
    """What sets the timer (the screen: Textual's ``set_timer``)."""

    def set_timer(self, delay: float, callback: Callable[[], object]) -> Timer: ...


class Cursor(Protocol):
    """The list that playback moves through (``StepsView``)."""

    cursor: int
    count: int

    def move_to(self, index: int, *, center: bool = False) -> None: ...


class PlaybackController:
    def __init__(
        self,
        timers: TimerHost,
        index: StepIndex,
        cursor: Callable[[], Cursor],
        on_change: Callable[[], None],
    ) -> None:
        self._timers = timers
        self._index = index
        #: The list is looked up when needed: it is mounted after the controller is made.
        self._cursor = cursor
        self._on_change = on_change
        self._timer: Timer | None = None
        self.playing = False
        self.speed_i = SPEEDS.index(1.0)

    @property
    def speed(self) -> float:
        return SPEEDS[self.speed_i]

    def delay(self, index: int) -> float:
        """Seconds to stay on the step at ``index`` at the current speed."""
        if not self._index.timed:
            return FIXED_PACE_S / self.speed
        d = self._index.summary(index).duration_s
        if not d:
            return FIXED_PACE_S / self.speed
        return min(d, MAX_GAP_S) / self.speed

    def toggle(self) -> bool:
        """Play (from the first step when at the last one) or pause; True when playing."""
        self.playing = not self.playing
        if self.playing:
            view = self._cursor()
            if view.cursor >= self._index.count - 1:
                view.move_to(0)
            self._schedule()
        else:
            self._cancel()
        return self.playing

    def faster(self) -> None:
        self._set_speed(min(len(SPEEDS) - 1, self.speed_i + 1))

    def slower(self) -> None:
        self._set_speed(max(0, self.speed_i - 1))

    def _set_speed(self, i: int) -> None:
        self.speed_i = i
        if self.playing:
            self._schedule()
        self._on_change()

    def _cancel(self) -> None:
        if self._timer is not None:
            self._timer.stop()
            self._timer = None

    def _schedule(self) -> None:
        self._cancel()
        self._timer = self._timers.set_timer(self.delay(self._cursor().cursor), self._tick)

    def _tick(self) -> None:
        self._timer = None
        if not self.playing:
            return
        view = self._cursor()
        if view.cursor >= self._index.count - 1:
            self.playing = False
            self._on_change()
            return
        view.move_to(view.cursor + 1, center=True)
        self._schedule()

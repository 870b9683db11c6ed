"""The agentdeck Textual app and the entry points the CLI calls.

``run_live_app`` starts a run and watches it, ``run_replay_app`` opens a log
(or follows one being written), ``run_runs_app`` lists a log directory (or an
Inspect AI log's samples), ``run_compare_app`` shows two runs side by side.
Each returns a process exit code.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from textual.app import App
from textual.binding import Binding, BindingType
from textual.screen import Screen

from agentdeck.engine.log import LogError, RunLog
from agentdeck.tui.gcutil import freeze_heap
from agentdeck.tui.keymap import KeymapError, load_keymap
from agentdeck.tui.live import LiveBuffer
from agentdeck.tui.screens.help import HelpScreen

if TYPE_CHECKING:
    from agentdeck.engine.run import RunHandle
    from agentdeck.tui.screens.run import RunScreen

THEMES = ("textual-dark", "textual-light")


class AgentDeckApp(App[int]):
    CSS_PATH = "app.tcss"
    TITLE = "agentdeck"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("question_mark", "help", "Help", id="app.help"),
        Binding("T", "toggle_theme", "Dark/light", show=False, id="app.theme"),
        # Textual's default for ctrl+c only says "press ctrl+q to quit"
        Binding(
            "ctrl+c",
            "interrupt",
            "Quit, as q (twice on a live run: stop it without asking)",
            show=False,
            priority=True,
            id="app.interrupt",
        ),
    ]

    def __init__(
        self,
        make_screen: Callable[[], Screen[Any]],
        *,
        keymap: dict[str, str] | None = None,
        theme: str = THEMES[0],
    ) -> None:
        super().__init__()
        self._make_screen = make_screen
        self._keymap = keymap or {}
        self.theme = theme

    def on_mount(self) -> None:
        if self._keymap:
            self.set_keymap(self._keymap)
        self.push_screen(self._make_screen())

    def on_ready(self) -> None:
        freeze_heap()

    def action_help(self) -> None:
        if isinstance(self.screen, HelpScreen):
            self.pop_screen()
            return
        self.push_screen(HelpScreen(self.screen))

    def action_toggle_theme(self) -> None:
        self.theme = THEMES[1] if self.theme == THEMES[0] else THEMES[0]

    async def action_quit(self) -> None:
        """ctrl+q: on a live run, ask first (like q)."""
        screen = self._live_run_screen()
        if screen is not None:
            screen.action_quit_run()
            return
        self.exit(0)

    def action_interrupt(self) -> None:
        """ctrl+c: as q on a live run (asks, then stops it cleanly; pressed again while
        asked, stops it; again while it stops, closes at once). Elsewhere: quit."""
        screen = self._live_run_screen()
        if screen is not None:
            screen.interrupt()
            return
        self.exit(0)

    def _live_run_screen(self) -> RunScreen | None:
        """The run screen of the run this app started, if there is one."""
        from agentdeck.tui.screens.run import RunScreen

        for screen in reversed(self.screen_stack):
            if isinstance(screen, RunScreen) and screen.source.run is not None:
                return screen
        return None


def _keymap_or_warn() -> dict[str, str]:
    try:
        return load_keymap()
    except KeymapError as e:
        print(f"agentdeck: {e} (using the default keys)", file=sys.stderr)
        return {}


# -- entry points ---------------------------------------------------------------------------


def run_replay_app(path: Path, *, follow: bool = False, log: RunLog | None = None) -> int:
    """Open a finished log at its first step (or follow one being written); ``log``:
    ``path`` opened already. Exit 0, or 2 when the log cannot be read (the message
    says why)."""
    from agentdeck.tui.screens.run import RunScreen

    if log is None:
        try:
            log = RunLog.open(path, follow=follow)
        except LogError as e:
            print(f"agentdeck: {e}", file=sys.stderr)
            return 2
    app = AgentDeckApp(
        lambda: RunScreen(log, mode="follow" if follow else "replay"), keymap=_keymap_or_warn()
    )
    code = app.run()
    log.close()
    return 0 if code is None else code


def run_runs_app(log_dir: Path) -> int:
    """List the runs in ``log_dir`` (or the samples of an Inspect AI log). Exit 0, or 2
    when it is neither a directory nor an Inspect log."""
    from agentdeck.tui.runs import is_inspect_log
    from agentdeck.tui.screens.runs import RunsScreen

    if not log_dir.is_dir() and not is_inspect_log(log_dir):
        print(
            f"agentdeck: {log_dir}: not a directory or an Inspect AI log (pass the log "
            "directory, e.g. logs/)",
            file=sys.stderr,
        )
        return 2
    app = AgentDeckApp(lambda: RunsScreen(log_dir), keymap=_keymap_or_warn())
    code = app.run()
    return 0 if code is None else code


def run_compare_app(a: RunLog, b: RunLog) -> int:
    """Two open logs side by side. Exit 0."""
    from agentdeck.tui.screens.compare import CompareScreen

    app = AgentDeckApp(lambda: CompareScreen(a, b), keymap=_keymap_or_warn())
    code = app.run()
    a.close()
    b.close()
    return 0 if code is None else code


#: Starts a run of a prepared configuration with the given event sinks: the engine's
#: ``Run`` by default; tests pass a fake.
StartRun = Callable[[Any, list[Callable[[Any], object]]], "RunHandle"]


def _engine_start(prepared: Any, sinks: list[Callable[[Any], object]]) -> RunHandle:
    from agentdeck.engine.run import Run

    return Run(prepared, sinks=sinks).setup().start()


def make_live_app(
    prepared: Any, *, start: StartRun | None = None, keymap: dict[str, str] | None = None
) -> tuple[AgentDeckApp, RunHandle]:
    """Start the run and build the app watching it (tests drive the app with run_test)."""
    from agentdeck.tui.screens.run import RunScreen

    buffer = LiveBuffer()
    handle = (start or _engine_start)(prepared, [buffer])
    app = AgentDeckApp(lambda: RunScreen(mode="live", handle=handle, buffer=buffer), keymap=keymap)
    return app, handle


def run_live_app(prepared: Any, *, start: StartRun | None = None) -> int:
    """Start a run and watch it. Exit 0 passed, 1 failed / not submitted, 2 bad input,
    3 infrastructure error, 130 interrupted (as the headless run)."""
    from agentdeck.engine.errors import EXIT_INFRA, EXIT_USAGE, UserError

    try:
        app, handle = make_live_app(prepared, start=start, keymap=_keymap_or_warn())
    except UserError as e:
        print(f"agentdeck: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    import signal

    def on_sigterm(signum: int, frame: object) -> None:
        # the same clean stop as q: the run ends "interrupted" with a complete log
        handle.stop()
        app.exit(130)

    old = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        code = app.run()
    finally:
        signal.signal(signal.SIGTERM, old)
    if not handle.join(0):
        # the app was closed without waiting (e.g. the terminal went away): stop cleanly
        handle.stop()
        handle.join(60.0)
    if code is None:
        result = handle.result
        code = result.exit_code if result is not None else EXIT_INFRA
    if handle.run_dir is not None:
        from agentdeck.tui.headless import print_run_summary

        print_run_summary(handle.run_dir.events)
    return code

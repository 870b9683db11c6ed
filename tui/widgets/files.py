"""The Files tab: the run's repository (its working directory) at the selected step.

Fed from the log's ``file_change`` events (``agentdeck.engine.workfiles``):

- the tree of the files as they were after the selected step, each file changed in
  that step marked (``+`` created, ``●`` edited, ``✗`` deleted);
- the selected file: its diff in that step (if it changed) and its text then,
  syntax-highlighted.

``FilesModel`` keeps the events, read once and then only the lines the log gained,
so following a live run costs what it writes. The pane reads the run screen's log and
selected step itself, a few times a second while it is shown; the run screen only
hosts it. A log without ``file_change`` events (not a repository task, or older than
``agentdeck.log/1.1``) says so.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import PurePosixPath

from rich.console import Group, RenderableType
from rich.syntax import Syntax
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Static, Tree
from textual.widgets.tree import TreeNode

from agentdeck.engine.events import EventError, FileChange
from agentdeck.engine.log import RunLog
from agentdeck.engine.workfiles import FileState, tree_at
from agentdeck.engine.workfiles import Tree as WorkTree
from agentdeck.tui import format as fmt
from agentdeck.tui.theme import DEFAULT_PALETTE

#: Lines of one file shown (the rest: ``agentdeck export --files``).
MAX_LINES = 3000
MARKS = {"create": "+", "edit": "●", "delete": "✗"}
PAST = {"create": "created", "edit": "edited", "delete": "deleted"}


class FilesModel:
    """The ``file_change`` events of one log, in order (grown as the log grows)."""

    def __init__(self) -> None:
        self.log: RunLog | None = None
        self.events: list[FileChange] = []
        self._upto = 0

    def update(self, log: RunLog | None) -> bool:
        """Take in the lines the log gained; True when there are new events."""
        if log is not self.log:
            self.log, self.events, self._upto = log, [], 0
        if log is None:
            return False
        end = len(log)
        if end <= self._upto:
            return False
        types = log.line_types(self._upto, end)
        added = False
        for i, etype in enumerate(types):
            if etype != "file_change":
                continue
            try:
                ev = log.event_at(self._upto + i)
            except EventError as e:
                log.warnings.append(str(e))
                continue
            if isinstance(ev, FileChange):
                self.events.append(ev)
                added = True
        self._upto = end
        return added

    def tree(self, step: int | None) -> WorkTree:
        return tree_at(self.events, step)


def lexer_for(path: str, text: str) -> str:
    name = PurePosixPath(path).name.lower()
    if name.endswith((".csv", ".tsv", ".txt", ".log")) or not name:
        return "text"
    try:
        return Syntax.guess_lexer(path, code=text[:2000])
    except Exception:  # noqa: BLE001 - pygments' guesses never stop a render
        return "text"


def step_marks(tree: WorkTree) -> dict[str, str]:
    """path -> op of its last change in the tree's step."""
    out: dict[str, str] = {}
    for ev in tree.changes:
        if ev.op == "edit" and out.get(ev.path) == "create":
            continue  # created and then edited in the same step: created
        out[ev.path] = ev.op
    return out


def tree_lines(tree: WorkTree, pal: dict[str, str] = DEFAULT_PALETTE) -> Text:
    """The tree as indented text (the compare screen), changed files marked."""
    marks = step_marks(tree)
    paths = sorted(set(tree.files) | {p for p, op in marks.items() if op == "delete"})
    out = Text()
    shown_dirs: set[str] = set()
    for path in paths:
        parts = PurePosixPath(path).parts
        for depth in range(len(parts) - 1):
            d = "/".join(parts[: depth + 1])
            if d not in shown_dirs:
                shown_dirs.add(d)
                out.append("  " * depth + parts[depth] + "/\n", style="bold")
        op = marks.get(path)
        style = {"create": pal["success"], "edit": pal["warning"], "delete": pal["error"]}.get(
            op or "", "dim"
        )
        mark = MARKS.get(op or "", " ")
        out.append("  " * (len(parts) - 1) + f"{mark} {parts[-1]}\n", style=style)
    if not paths:
        out.append("(no files)\n", style="dim")
    return out


def _diff_renderable(ev: FileChange, theme: str) -> RenderableType:
    if ev.op == "delete":
        return Text("deleted in this step", style="italic")
    if ev.omitted:
        why = {"binary": "a binary file", "too_large": "too large to keep in the log"}
        return Text(
            f"{ev.op}: {why.get(ev.omitted, ev.omitted)} ({fmt.size(ev.size)})", style="dim"
        )
    if ev.diff is not None:
        return Syntax(ev.diff.rstrip("\n"), "diff", theme=theme, background_color="default")
    text = ev.content or ""
    body = "\n".join("+" + line for line in text.splitlines()[:MAX_LINES])
    return Syntax(body or "+", "diff", theme=theme, background_color="default")


def step_diffs(tree: WorkTree, theme: str, pal: dict[str, str] = DEFAULT_PALETTE) -> RenderableType:
    """Every change of the tree's step, as diffs (the compare screen)."""
    if not tree.changes:
        return Text("no file changed in this step", style="dim")
    parts: list[RenderableType] = []
    for ev in tree.changes:
        head = Text(f"{MARKS[ev.op]} {ev.path}", style=f"bold {_op_color(ev.op, pal)}")
        head.append(f"  {PAST[ev.op]}", style="dim")
        parts += [head, _diff_renderable(ev, theme)]
    return Group(*parts)


def _op_color(op: str, pal: dict[str, str]) -> str:
    return {"create": pal["success"], "edit": pal["warning"], "delete": pal["error"]}[op]


def render_file(
    tree: WorkTree, path: str | None, theme: str, pal: dict[str, str] = DEFAULT_PALETTE
) -> RenderableType:
    """One file at the tree's step: a header, its diff in that step, its text."""
    if path is None:
        return Text("No file selected.", style="dim")
    st: FileState | None = tree.files.get(path)
    changes = [ev for ev in tree.changes if ev.path == path]
    parts: list[RenderableType] = []
    head = Text(path, style="bold")
    if st is not None:
        head.append(f"  {fmt.size(st.size)}", style="dim")
        if st.sha256:
            head.append(f"  sha256 {st.sha256[:12]}", style="dim")
        when = (
            "from the start"
            if st.changed_step is None
            else f"last changed in step {st.changed_step}"
        )
        head.append(f"  {when}", style="dim")
    parts.append(head)
    for ev in changes:
        parts.append(
            Text(
                f"{MARKS[ev.op]} {PAST[ev.op]} in step {tree.step}",
                style=f"bold {_op_color(ev.op, pal)}",
            )
        )
        if ev.op != "create" or ev.omitted:
            parts.append(_diff_renderable(ev, theme))
    if st is None:
        if not changes:
            parts.append(Text("not in the working directory at this step", style="dim"))
        return Group(*parts)
    if st.problem:
        parts.append(Text(f"✗ {st.problem}", style=f"bold {pal['error']}"))
    if st.text is None:
        why = {"binary": "a binary file", "too_large": "larger than the log keeps"}.get(
            st.omitted or "", "not kept in the log"
        )
        parts.append(Text(f"({why}: its text is not shown)", style="dim"))
        return Group(*parts)
    lines = st.text.splitlines()
    shown = "\n".join(lines[:MAX_LINES])
    parts.append(Text(""))
    parts.append(
        Syntax(
            shown or " ",
            lexer_for(path, st.text),
            theme=theme,
            line_numbers=True,
            word_wrap=False,
            background_color="default",
        )
    )
    if len(lines) > MAX_LINES:
        parts.append(
            Text(
                f"… {len(lines) - MAX_LINES:,} more lines (agentdeck export --files writes "
                "the whole repository)",
                style="italic",
            )
        )
    return Group(*parts)


class FileTree(Tree[str]):
    """The repository's folders and files; each leaf's data is its path."""

    BINDINGS = [
        Binding("j", "cursor_down", "Down", show=False, id="files.down"),
        Binding("k", "cursor_up", "Up", show=False, id="files.up"),
    ]


class FilesPane(Horizontal):
    """The Files tab. ``source`` gives (log, selected step) whenever the pane looks."""

    DEFAULT_CSS = """
    FilesPane { height: 1fr; }
    FilesPane > FileTree { width: 30%; min-width: 16; max-width: 36; border-right: solid $panel; }
    FilesPane > #files-view { width: 1fr; padding: 0 1; }
    """

    def __init__(
        self,
        source: Callable[[], tuple[RunLog | None, int | None]] | None = None,
        **kw: object,
    ) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.source = source
        self.model = FilesModel()
        self.step: int | None = None
        self.selected: str | None = None
        self.current: WorkTree | None = None
        self._shown_key: tuple[int | None, int] | None = None

    def compose(self) -> ComposeResult:
        yield FileTree("work/", id="files-tree")
        with VerticalScroll(id="files-view"):
            yield Static(Text("No files yet.", style="dim"), id="files-body")

    def on_mount(self) -> None:
        self.query_one(FileTree).show_root = False
        self.set_interval(0.25, self.refresh_files, name="files")

    def _theme(self) -> str:
        from agentdeck.tui.theme import syntax_theme

        return syntax_theme(self.app)

    def _pal(self) -> dict[str, str]:
        from agentdeck.tui.theme import palette

        return palette(self.app)

    def refresh_files(self, *, force: bool = False) -> None:
        """Look at the log and the selected step; redraw what changed (only when shown)."""
        if self.source is None or (not force and not self._visible()):
            return
        log, step = self.source()
        self.model.update(log)
        key = (step, len(self.model.events))
        if not force and key == self._shown_key:
            return
        self.show_step(step)

    def _visible(self) -> bool:
        """Shown now (its tab is the active one): no ancestor is hidden."""
        if not self.is_mounted:
            return False
        node: object = self
        while node is not None:
            if getattr(node, "display", True) is False:
                return False
            node = getattr(node, "parent", None)
        return bool(self.region.width)

    def show_step(self, step: int | None) -> None:
        """The tree after ``step`` (None: the last state) and the selected file."""
        moved = step != self.step
        self.step = step
        self._shown_key = (step, len(self.model.events))
        tree = self.current = self.model.tree(step)
        marks = step_marks(tree)
        changed = [ev.path for ev in tree.changes]
        if moved and changed and self.selected not in marks:
            self.selected = changed[0]  # a new step: show what it changed
        elif self.selected is None or (
            self.selected not in tree.files and self.selected not in marks
        ):
            self.selected = changed[0] if changed else (tree.paths()[0] if tree.files else None)
        self._build_tree(tree, marks)
        self._show_file()

    def _build_tree(self, tree: WorkTree, marks: dict[str, str]) -> None:
        widget = self.query_one(FileTree)
        pal = self._pal()
        widget.clear()
        if not self.model.events:
            widget.root.add_leaf(
                Text("(no file_change events in this log)", style="dim"), data=None
            )
            return
        dirs: dict[str, TreeNode[str]] = {"": widget.root}
        paths = sorted(set(tree.files) | {p for p, op in marks.items() if op == "delete"})
        select_node: TreeNode[str] | None = None
        for path in paths:
            parts = PurePosixPath(path).parts
            parent = widget.root
            for depth in range(len(parts) - 1):
                d = "/".join(parts[: depth + 1])
                if d not in dirs:
                    changed = any(p.startswith(d + "/") for p in marks)
                    label = Text(parts[depth] + "/", style="bold" if changed else "")
                    dirs[d] = parent.add(label, data=d, expand=True)
                parent = dirs[d]
            op = marks.get(path)
            label = Text(f"{MARKS.get(op or '', ' ')} {parts[-1]}")
            if op:
                label.stylize(f"bold {_op_color(op, pal)}")
            node = parent.add_leaf(label, data=path)
            if path == self.selected:
                select_node = node
        if not paths:
            widget.root.add_leaf(Text("(empty at this step)", style="dim"), data=None)
        if select_node is not None:
            # after the rebuilt tree is laid out (its first line is highlighted first)
            node = select_node
            self.call_after_refresh(lambda: widget.move_cursor(node))

    def _show_file(self) -> None:
        tree = self.current
        body = self.query_one("#files-body", Static)
        if not self.model.events:
            body.update(
                Text(
                    "This run recorded no file changes: it is not a repository task, or its "
                    "log is older than agentdeck.log/1.1.",
                    style="dim",
                )
            )
            return
        if tree is None:
            return
        title = Text(
            f"step {self.step}" if self.step is not None else "the end of the run", style="dim"
        )
        body.update(Group(title, render_file(tree, self.selected, self._theme(), self._pal())))

    def on_tree_node_highlighted(self, event: Tree.NodeHighlighted[str]) -> None:
        path = event.node.data
        if path is None or self.current is None:
            return
        known = path in self.current.files or any(ev.path == path for ev in self.current.changes)
        if known and path != self.selected:
            self.selected = path
            self._show_file()
            self.query_one("#files-view", VerticalScroll).scroll_home(animate=False)


__all__ = [
    "FileTree",
    "FilesModel",
    "FilesPane",
    "render_file",
    "step_diffs",
    "step_marks",
    "tree_lines",
]

"""How the CLI prints things, in Ollama's formats: sizes, times, durations, tables, progress."""

from __future__ import annotations

import math
import re
import sys
import threading
from datetime import datetime, timezone
from typing import Any, TextIO

# -- numbers and times (Ollama's format package) --------------------------------------------------


def human_bytes(n: int) -> str:
    """format.HumanBytes: decimal units, "542 MB", "1.5 GB", "10 KB", "999 B"."""
    for unit, size in (("TB", 10**12), ("GB", 10**9), ("MB", 10**6), ("KB", 10**3)):
        if n >= size:
            value = n / size
            if value >= 10 or value == math.trunc(value):
                return f"{int(value)} {unit}"
            return f"{value:.1f} {unit}"
    return f"{n} B"


def human_duration(seconds: float) -> str:
    """format.HumanDuration: "Less than a second", "About a minute", "3 hours", "2 weeks"."""
    s = int(seconds)
    if s < 1:
        return "Less than a second"
    if s == 1:
        return "1 second"
    if s < 60:
        return f"{s} seconds"
    minutes = int(seconds // 60)
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = round(seconds / 3600)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{int(seconds / 3600 / 24 / 365)} years"


def parse_time(text: str | None) -> datetime | None:
    """An RFC 3339 time as the server writes it (nanoseconds, `Z` or an offset); None if unreadable."""
    if not text:
        return None
    m = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)", text.strip())
    if not m:
        return None
    frac = (m.group(2) or ".0")[:7].ljust(7, "0")
    zone = "+00:00" if m.group(3) == "Z" else m.group(3)
    try:
        return datetime.fromisoformat(m.group(1) + frac + zone)
    except ValueError:
        return None


def human_time(when: datetime | None, zero: str = "Never", now: datetime | None = None) -> str:
    """format.HumanTime: "2 minutes ago", "4 minutes from now", "Forever" (decades ahead)."""
    if when is None:
        return zero
    now = now or datetime.now(timezone.utc)
    delta = (now - when).total_seconds()
    if delta < -20 * 365 * 24 * 3600:
        return "Forever"
    if delta < 0:
        return human_duration(-delta) + " from now"
    return human_duration(delta) + " ago"


def _fraction(value: int, unit: int) -> str:
    whole, frac = divmod(value, unit)
    digits = str(frac).rjust(len(str(unit)) - 1, "0").rstrip("0")
    return f"{whole}.{digits}" if digits else str(whole)


def go_duration(ns: int) -> str:
    """Go's time.Duration.String: "1.234567s", "12.5ms", "850µs", "1m2.5s", "0s"."""
    if ns == 0:
        return "0s"
    sign, u = ("-" if ns < 0 else ""), abs(int(ns))
    if u < 1_000:
        return f"{sign}{u}ns"
    if u < 1_000_000:
        return f"{sign}{_fraction(u, 1_000)}µs"
    if u < 1_000_000_000:
        return f"{sign}{_fraction(u, 1_000_000)}ms"
    hours, rest = divmod(u, 3600 * 10**9)
    minutes, rest = divmod(rest, 60 * 10**9)
    prefix = f"{hours}h{minutes}m" if hours else (f"{minutes}m" if minutes else "")
    return f"{sign}{prefix}{_fraction(rest, 10**9)}s"


def metrics_summary(final: dict[str, Any]) -> str:
    """api.Metrics.Summary, printed by `run --verbose` from the last chunk of an answer."""
    lines = []

    def get(key: str) -> int:
        value = final.get(key)
        return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0

    total, load = get("total_duration"), get("load_duration")
    p_count, p_dur = get("prompt_eval_count"), get("prompt_eval_duration")
    e_count, e_dur = get("eval_count"), get("eval_duration")
    if total > 0:
        lines.append(f"total duration:       {go_duration(total)}")
    if load > 0:
        lines.append(f"load duration:        {go_duration(load)}")
    if p_count > 0:
        lines.append(f"prompt eval count:    {p_count} token(s)")
    if p_dur > 0:
        lines.append(f"prompt eval duration: {go_duration(p_dur)}")
        lines.append(f"prompt eval rate:     {p_count / (p_dur / 1e9):.2f} tokens/s")
    if e_count > 0:
        lines.append(f"eval count:           {e_count} token(s)")
    if e_dur > 0:
        lines.append(f"eval duration:        {go_duration(e_dur)}")
        lines.append(f"eval rate:            {e_count / (e_dur / 1e9):.2f} tokens/s")
    return "\n".join(lines)


# -- tables ---------------------------------------------------------------------------------------

def table(rows: list[list[str]], header: list[str] | None = None, indent: str = "", pad: str = "    ") -> str:
    """Left-aligned columns separated by four spaces, as Ollama's borderless tablewriter prints them."""
    all_rows = ([header] if header else []) + rows
    if not all_rows:
        return ""
    columns = max(len(r) for r in all_rows)
    all_rows = [r + [""] * (columns - len(r)) for r in all_rows]
    widths = [max(len(r[i]) for r in all_rows) for i in range(columns)]
    lines = [indent + pad.join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in all_rows]
    return "\n".join(lines)


def _head(text: str, n: int) -> list[list[str]]:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    rows = [[line] for line in lines[:n]]
    if len(lines) > n:
        rows.append(["..."])
    return rows


def _value(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return str(value)
    return str(value)


def show_info(resp: dict[str, Any], verbose: bool = False) -> str:
    """`ollama show MODEL`: Model, Capabilities, Parameters, System and License sections."""
    sections: list[tuple[str, list[list[str]]]] = []
    details = resp.get("details") or {}
    info = resp.get("model_info") or {}
    model: list[list[str]] = []
    arch = info.get("general.architecture")
    if arch:
        model.append(["architecture", str(arch)])
        params = details.get("parameter_size") or ""
        if not params and isinstance(info.get("general.parameter_count"), (int, float)):
            from ..models.info import human_number

            params = human_number(int(info["general.parameter_count"]))
        model.append(["parameters", params])
        for key, label in (("context_length", "context length"), ("embedding_length", "embedding length")):
            if f"{arch}.{key}" in info:
                model.append([label, _value(info[f"{arch}.{key}"])])
    else:
        model.append(["architecture", str(details.get("family", ""))])
        model.append(["parameters", str(details.get("parameter_size", ""))])
    if details.get("quantization_level"):
        model.append(["quantization", str(details["quantization_level"])])
    sections.append(("Model", model))
    if resp.get("capabilities"):
        sections.append(("Capabilities", [[str(c)] for c in resp["capabilities"]]))
    if resp.get("parameters"):
        rows = []
        for line in str(resp["parameters"]).splitlines():
            fields = line.split(None, 1)
            if fields:
                rows.append([fields[0], fields[1].strip() if len(fields) > 1 else ""])
        sections.append(("Parameters", rows))
    if resp.get("system"):
        sections.append(("System", _head(str(resp["system"]), 2)))
    if resp.get("license"):
        sections.append(("License", _head(str(resp["license"]), 2)))
    if verbose:
        if info:
            sections.append(("Metadata", [[k, _value(v)] for k, v in sorted(info.items())]))
        if resp.get("tensors"):
            sections.append(("Tensors", [[str(t.get("name", "")), str(t.get("type", "")), str(t.get("shape", ""))]
                                         for t in resp["tensors"]]))
    out = []
    for title, rows in sections:
        out.append(f"  {title}")
        if rows:
            out.append(table(rows, indent="    "))
        out.append("")
    return "\n".join(out) + "\n"


# -- progress ------------------------------------------------------------------------------------

class ProgressView:
    """Ollama's pull/create progress: a bar per `digest` (bytes, speed, ETA), a line per status.

    Statuses that have no digest are printed once each, below the bars, which are finished (left
    on screen) first, so the output reads top to bottom in the order things happened."""

    def __init__(self, stream: TextIO | None = None):
        from rich.console import Console

        self.console = Console(file=stream or sys.stderr, highlight=False)
        self.progress: Any = None
        self.tasks: dict[str, Any] = {}
        self.last_status: str | None = None

    def _bars(self) -> Any:
        if self.progress is None:
            from rich.progress import BarColumn, DownloadColumn, Progress, TaskProgressColumn, TextColumn

            self.progress = Progress(
                TextColumn("{task.description}", markup=False), TaskProgressColumn(), BarColumn(),
                DownloadColumn(), _speed_column(), _eta_column(),
                console=self.console, transient=False, refresh_per_second=8,
            )
            self.progress.start()
            self.tasks = {}
        return self.progress

    def update(self, event: dict[str, Any]) -> None:
        status = str(event.get("status") or "")
        digest = event.get("digest")
        if digest:
            total = event.get("total") or None
            completed = event.get("completed") or 0
            bars = self._bars()
            task = self.tasks.get(digest)
            if task is None:
                self.tasks[digest] = bars.add_task(status or str(digest)[:19], total=total, completed=completed)
            else:
                bars.update(task, total=total, completed=completed)
            self.last_status = status
            return
        self.finish_bars()
        if status and status != self.last_status:
            self.console.print(status, markup=False, soft_wrap=True)
        self.last_status = status

    def finish_bars(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None

    def __enter__(self) -> ProgressView:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.finish_bars()


def _speed_column() -> Any:
    """Bytes per second while it moves (blank until known, and for files that came in one piece)."""
    from rich.filesize import decimal
    from rich.progress import ProgressColumn
    from rich.text import Text

    class Speed(ProgressColumn):
        def render(self, task: Any) -> Text:
            speed = task.finished_speed or task.speed
            return Text(f"{decimal(int(speed))}/s" if speed else "", style="progress.data.speed")

    return Speed()


def _eta_column() -> Any:
    """Time left while downloading; blank once done."""
    from rich.progress import ProgressColumn
    from rich.text import Text

    class Eta(ProgressColumn):
        max_refresh = 0.5

        def render(self, task: Any) -> Text:
            left = task.time_remaining
            if task.finished or left is None:
                return Text("")
            minutes, seconds = divmod(int(left), 60)
            hours, minutes = divmod(minutes, 60)
            return Text(f"{hours}:{minutes:02d}:{seconds:02d}", style="progress.remaining")

    return Eta()


class Spinner:
    """A braille spinner on stderr while waiting (a terminal only); `stop` wipes it."""

    FRAMES = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"

    def __init__(self, message: str = "", stream: TextIO | None = None):
        self.stream = stream or sys.stderr
        self.message = message
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self) -> Spinner:
        if self.stream.isatty() and self._thread is None:
            self._thread = threading.Thread(target=self._spin, daemon=True)
            self._thread.start()
        return self

    def _spin(self) -> None:
        i = 0
        while not self._stop.wait(0.1 if i else 0.0):
            with self._lock:
                if self._stop.is_set():
                    break
                text = f"{self.message} {self.FRAMES[i % len(self.FRAMES)]}" if self.message else self.FRAMES[i % 10]
                self.stream.write(f"\r{text} ")
                self.stream.flush()
            i += 1

    def stop(self) -> None:
        if self._thread is None:
            return
        with self._lock:
            self._stop.set()
            self.stream.write("\r\x1b[K")
            self.stream.flush()
        self._thread.join(timeout=1)
        self._thread = None

    def __enter__(self) -> Spinner:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

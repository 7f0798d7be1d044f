"""Server and client settings read from the environment, the way Ollama reads them."""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass
from pathlib import Path

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 11434


@dataclass(frozen=True)
class HostPort:
    scheme: str
    host: str
    port: int

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"


def env(name: str) -> str:
    """A variable as Ollama reads it: surrounding spaces and quotes stripped."""
    return os.environ.get(name, "").strip().strip("\"'").strip()


_env = env  # the name engine/args.py imports


def is_loopback(host: str | None) -> bool:
    """Whether a bind or connect address is this machine only (`localhost`, 127.x, ::1, `[::1]`)."""
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def parse_host(value: str) -> HostPort:
    """Parse OLLAMA_HOST forms: `1.2.3.4`, `:8080`, `h:p`, `[::1]:1337`, `http://h`, `https://h`."""
    value = value.strip()
    if not value:
        return HostPort("http", DEFAULT_HOST, DEFAULT_PORT)
    scheme, port = "http", DEFAULT_PORT
    if "://" in value:
        scheme, value = value.split("://", 1)
        port = {"http": 80, "https": 443}.get(scheme, DEFAULT_PORT)
    value = value.split("/", 1)[0]  # drop a path prefix
    host = value
    m = re.fullmatch(r"\[([^\]]+)\](?::(\d*))?", value)
    if m:
        host, port_text = m.group(1), m.group(2)
    elif value.count(":") == 1:
        host, port_text = value.split(":")
    else:
        port_text = None
    if port_text:
        try:
            parsed = int(port_text)
            port = parsed if 0 < parsed < 65536 else DEFAULT_PORT
        except ValueError:
            port = DEFAULT_PORT
    if host == "":
        host = "0.0.0.0"
    return HostPort(scheme, host, port)


def server_host() -> HostPort:
    """Where `serve` binds and where the CLI connects: VLLAMA_HOST, else OLLAMA_HOST."""
    return parse_host(env("VLLAMA_HOST") or env("OLLAMA_HOST"))


def client_url() -> str:
    hp = server_host()
    if hp.host in ("0.0.0.0", "::"):
        hp = HostPort(hp.scheme, "127.0.0.1", hp.port)
    return hp.url


def models_dir() -> Path:
    value = env("VLLAMA_MODELS")
    return Path(value).expanduser() if value else Path.home() / ".vllama" / "models"


_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")


def parse_go_duration(text: str) -> float:
    """Seconds in a Go duration string ("5m", "1h30m", "-1m", "0"); ValueError with Go's message."""
    original = text
    sign = 1.0
    if text[:1] in "+-":
        sign = -1.0 if text[0] == "-" else 1.0
        text = text[1:]
    if text == "0":
        return 0.0
    if not text:
        raise ValueError(f'time: invalid duration "{original}"')
    total, pos = 0.0, 0
    while pos < len(text):
        m = _DURATION_PART.match(text, pos)
        if not m:
            if re.fullmatch(r"[\d.]+", text[pos:]):
                raise ValueError(f'time: missing unit in duration "{original}"')
            raise ValueError(f'time: invalid duration "{original}"')
        total += float(m.group(1)) * _DURATION_UNITS[m.group(2)]
        pos = m.end()
    return sign * total


FOREVER = float("inf")
# Go's time.Duration tops out at 2^63-1 ns (about 292 years): anything longer means "forever".
MAX_DURATION_SECONDS = (2**63 - 1) / 1e9


def keep_alive_seconds(value: object, default: float) -> float:
    """Ollama's keep_alive: absent -> default, number = seconds, Go duration string; negative = forever."""
    if value is None:
        return default
    if isinstance(value, bool):
        raise ValueError("keep_alive must be a duration")
    if isinstance(value, (int, float)):
        seconds = float(value) if abs(value) < 1e300 else float("inf")  # float(10**400) overflows
    elif isinstance(value, str):
        seconds = parse_go_duration(value) if value else default
    else:
        raise ValueError("keep_alive must be a duration")
    return FOREVER if seconds < 0 or seconds > MAX_DURATION_SECONDS else seconds


def default_keep_alive() -> float:
    value = env("OLLAMA_KEEP_ALIVE")
    if not value:
        return 300.0
    try:
        return keep_alive_seconds(float(value) if re.fullmatch(r"-?\d+(\.\d*)?", value) else value, 300.0)
    except ValueError:
        return 300.0


def env_int(name: str, default: int) -> int:
    try:
        return int(env(name) or default)
    except ValueError:
        return default

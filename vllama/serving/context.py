"""What every request is served with: the model store, the engine scheduler, the server's defaults."""

from __future__ import annotations

from dataclasses import dataclass

from ..engine.scheduler import Scheduler
from ..models.store import ModelStore


@dataclass
class ServingContext:
    store: ModelStore
    scheduler: Scheduler
    default_keep_alive: float  # seconds, when a request names none

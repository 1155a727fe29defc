"""Configuration from the environment (``TIDEFLOW_*``) or a ``.env`` file."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TIDEFLOW_", env_file=".env", extra="ignore")

    data_dir: Path = Field(default=Path(".tideflow"), description="where the embedded stack keeps its files")
    database_url: str = Field(default="", description="SQLAlchemy URL; empty means SQLite under data_dir")
    temporal_address: str = Field(default="127.0.0.1:7233", validation_alias="TEMPORAL_ADDRESS")
    temporal_namespace: str = "default"
    task_queue: str = "tideflow"
    web_host: str = "127.0.0.1"
    web_port: int = 8000
    secret_key: SecretStr = Field(default=SecretStr(""), description="signs sessions; generated if empty")
    secure_cookies: bool = Field(default=False, description="mark cookies Secure (behind HTTPS)")
    archive_retention_days: int = Field(default=180, ge=0, description="days the message archive keeps "
                                        "messages; 0 keeps them forever")
    max_event_bytes: int = 256 * 1024
    frequency_cap: str = Field(default="3/P7D", description="promotional messages per customer per window; "
                               "empty disables the cap")
    max_batch_events: int = 1000
    stats_flush_every: int = 50
    reroute_after_seconds: float = Field(default=5.0, ge=0, description="age after which an event stored but "
                                         "not routed (and not claimed by a live router) is routed again")
    reroute_every_seconds: float = Field(default=5.0, gt=0, description="how often the re-router looks")
    latency_bound_seconds: float = Field(default=2.0, gt=0, description="ingestion answers 429 + Retry-After "
                                         "when the backlog would push event-to-action latency past this")
    routing_lanes: int = Field(default=16, ge=1, le=1024, description="events of this many customers are "
                               "routed at the same time (each customer's in order)")
    routing_capacity: int = Field(default=2000, ge=1, description="events a web process holds for routing "
                                  "at most; beyond it ingestion answers 429")
    worker_workflow_tasks: int = Field(default=16, ge=2, description="workflow tasks a worker takes at once: "
                                       "the rest wait in Temporal's task queue, where admission control sees "
                                       "their age")
    worker_local_activities: int = Field(default=32, ge=1, description="local activities (short actions) a "
                                         "worker runs at once")
    worker_metrics_port: int = Field(default=0, ge=0, le=65535, description="a worker serves Prometheus metrics "
                                     "on 127.0.0.1:<port> (0: off)")
    metrics_token: SecretStr = Field(default=SecretStr(""), description="bearer token that may scrape "
                                     "/metrics (besides admins); empty: admins only")

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'tideflow.db').resolve()}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()

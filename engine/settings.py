"""Configuration from the environment (``TIDEFLOW_*``) or a ``.env`` file."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from engine.zones import check_zone


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TIDEFLOW_", env_file=".env", extra="ignore")

    data_dir: Path = Field(default=Path(".tideflow"), description="where the embedded stack keeps its files")
    database_url: str = Field(default="", description="SQLAlchemy URL; empty means SQLite under data_dir")
    temporal_address: str = Field(default="127.0.0.1:7233", validation_alias="TEMPORAL_ADDRESS")
    temporal_namespace: str = "default"
    temporal_encryption: bool = Field(default=True, description="encrypt workflow payloads (customer data, "
                                      "events, messages) stored by Temporal, under a key derived from the "
                                      "instance key (engine/payload_codec.py)")
    temporal_ui: bool = Field(default=False, description="start the embedded Temporal dev server's web UI (on "
                              "loopback, served to admins by the web app under /admin/temporal)")
    task_queue: str = "tideflow"
    web_host: str = "127.0.0.1"
    web_port: int = 8000
    trusted_proxies: str = Field(default="", description="addresses / networks of reverse proxies whose "
                                 "X-Forwarded-For and X-Forwarded-Proto are believed (comma-separated, e.g. "
                                 "10.0.0.5,10.1.0.0/16); empty: none, the client address is the peer's")
    secret_key: SecretStr = Field(default=SecretStr(""), description="signs sessions; generated if empty")
    secure_cookies: bool = Field(default=False, description="mark cookies Secure (behind HTTPS)")
    archive_retention_days: int = Field(default=180, ge=0, description="days the message archive keeps "
                                        "messages; 0 keeps them forever")
    csat_link_days: int = Field(default=14, ge=1, le=365, description="days a satisfaction-survey link works "
                                "after it was sent")
    max_event_bytes: int = Field(default=256 * 1024, description="bytes of JSON one event's payload (and its "
                                 "profile) may take: it travels in workflow histories")
    max_batch_bytes: int = Field(default=10 * 1024 * 1024, description="bytes a POST /api/events body (one event "
                                 "or a batch) may have; refused with 413 while it is read")
    max_hook_bytes: int = Field(default=1024 * 1024, description="bytes a connector push to /hooks may have")
    max_request_bytes: int = Field(default=10 * 1024 * 1024, description="bytes any other request body may have "
                                   "(flows, imports, decisions)")
    max_json_depth: int = Field(default=32, ge=2, le=200, description="nesting levels a JSON body may have")
    max_json_string: int = Field(default=1_048_576, ge=1, description="characters one JSON string may have")
    frequency_cap: str = Field(default="3/P7D", description="promotional messages per customer per window; "
                               "empty disables the cap")
    max_batch_events: int = 1000
    stats_flush_every: int = 50
    display_timezone: str = Field(default="Asia/Shanghai", description="the workspace's time zone: every time on "
                                  "the designer's pages is shown in it, with its name")
    outbound_allow: str = Field(default="", description="networks (10.0.0.0/8), host names (crm.internal) and "
                                "domain suffixes (.corp.example), comma-separated, that webhooks and plugins may "
                                "call although they are not public (engine/outbound.py)")
    evaluation_workers: int = Field(default=1, ge=1, le=16, description="processes the web app evaluates "
                                    "previews, validations and decisions in (engine/isolation.py)")
    evaluation_timeout_seconds: float = Field(default=5.0, gt=0, le=60, description="an evaluation's process "
                                              "is killed past this")
    evaluation_memory_mb: int = Field(default=1024, ge=0, description="address-space cap of an evaluation "
                                      "process (0: none)")
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
    worker_in_web: bool = Field(default=False, description="``tideflow web`` runs a worker in its own process too "
                                "(one process instead of two; journeys start eagerly, saving Temporal a task "
                                "dispatch per event); separate workers may still poll the same task queue")
    worker_metrics_port: int = Field(default=0, ge=0, le=65535, description="a worker serves Prometheus metrics "
                                     "on 127.0.0.1:<port> (0: off)")
    metrics_token: SecretStr = Field(default=SecretStr(""), description="bearer token that may scrape "
                                     "/metrics (besides admins); empty: admins only")

    @field_validator("display_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        return check_zone(value)

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'tideflow.db').resolve()}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()

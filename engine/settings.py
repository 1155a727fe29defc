"""Configuration from the environment (``TIDEFLOW_*``) or a ``.env`` file."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator
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
    display_timezone: str = Field(default="Asia/Shanghai", description="the workspace's time zone: every time on "
                                  "the designer's pages is shown in it, with its name")
    metrics_token: SecretStr = Field(default=SecretStr(""), description="bearer token that may scrape "
                                     "/metrics (besides admins); empty: admins only")

    @field_validator("display_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"'{value}' is not an IANA time zone; use e.g. 'Asia/Shanghai'") from None
        return value

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'tideflow.db').resolve()}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()

"""Settings, read from the environment (prefix LANGNGHE_) by a cached function, never at import."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LANGNGHE_", env_file=".env", extra="ignore")

    data_dir: Path = Path("var")
    db_path: Path | None = None  # default: <data_dir>/langnghe.sqlite3
    # the issue engine's side tables (cached vectors, issue state, emerging events) for a store
    # without a file of its own (the search engine): default <data_dir>/side.sqlite3. Every process
    # that processes or ranks with that store must see the same file (docs/scale.md).
    side_db_path: Path | None = None
    models_dir: Path = REPO_ROOT / "models"
    host: str = "127.0.0.1"
    port: int = 8000
    batch_size: int = 256
    # the understanding pipeline's classifier heads (docs/models.md): "hybrid" (default: n-gram +
    # sentence-encoder heads; one encoder pass per mention, its vectors cached for the issue
    # clustering), "encoder" (encoder heads alone) or "linear" (hashed n-grams, numpy only)
    classifier_backend: Literal["linear", "hybrid", "encoder"] = "hybrid"
    # the store of mentions: the embedded SQLite file by default, or a search engine
    # (opensearch+http://host:9200, elasticsearch+https://…, sqlite:///path) — docs/scale.md
    store_url: str | None = None
    redis_url: str | None = None  # workers and distributed crawling share work through Redis

    # accounts and sessions (docs/accounts.md); the secret key is generated into data_dir if unset
    secret_key: SecretStr | None = None
    auth_required: bool = True
    session_hours: float = 12
    cookie_secure: bool = False
    metrics_public: bool = False
    public_url: str = "http://127.0.0.1:8000"
    webhook_allow_private: bool = False

    # e-mail (briefings, digests, alerts)
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_user: str | None = None
    smtp_password: SecretStr | None = None
    smtp_from: str = "Lắng Nghe <no-reply@localhost>"
    smtp_starttls: bool = True
    smtp_ssl: bool = False
    smtp_timeout: float = 20.0

    # crawling (docs/crawling.md). Social platform credentials are the operator's and are read
    # from LANGNGHE_FACEBOOK_ACCESS_TOKEN / LANGNGHE_YOUTUBE_API_KEY by crawlers.social, never committed.
    sources_file: Path | None = None
    recrawl_hours: float = 48

    @field_validator("classifier_backend", mode="before")
    @classmethod
    def _backend_name(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @property
    def database(self) -> Path:
        """The SQLite file: the embedded store, and the accounts in every deployment."""
        return self.db_path or self.data_dir / "langnghe.sqlite3"

    @property
    def side_database(self) -> Path:
        """The SQLite file of the issue engine's side tables when the store has no file."""
        return self.side_db_path or self.data_dir / "side.sqlite3"


@lru_cache
def get_settings() -> Settings:
    return Settings()

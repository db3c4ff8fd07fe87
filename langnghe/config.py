"""Settings, read from the environment (prefix LANGNGHE_) by a cached function, never at import."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LANGNGHE_", env_file=".env", extra="ignore")

    data_dir: Path = Path("var")
    db_path: Path | None = None  # default: <data_dir>/langnghe.sqlite3
    models_dir: Path = REPO_ROOT / "models"
    host: str = "127.0.0.1"
    port: int = 8000
    batch_size: int = 256

    @property
    def database(self) -> Path:
        return self.db_path or self.data_dir / "langnghe.sqlite3"


@lru_cache
def get_settings() -> Settings:
    return Settings()

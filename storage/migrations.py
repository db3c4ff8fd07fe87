"""Ordered schema migrations of the SQLite store.

The schema version lives in ``PRAGMA user_version``. Each migration is a list of SQL statements
run in one transaction together with the version bump, so a file is never left half-migrated.
Add new migrations at the end; never edit one that has shipped.

Notes on the design:

* ``mentions.rid`` is the integer rowid; ``mentions.id`` the stable text id of the contract.
* ``mentions_fts`` is an *external-content* FTS5 table over ``mentions`` (no second copy of the
  text). It indexes the FOLDED title and text (``nlp.text.fold``), which the store computes in
  Python and writes in the same transaction as the mention; a 'delete' is given the folded old
  values. Because the index content is not the content table's, never run FTS5's own 'rebuild'
  on it: use ``SQLiteStore.rebuild_search_index()``.
* ``mention_areas`` repeats ``published_at`` so that "newest mentions of area X" is a range scan
  of one index; its (mention_rid, area_id) index answers "is mention M in area X".
* ``rankings``' primary key (period, period_key, area_id, rank) answers ``top_issues`` by itself
  (no sort), as well as the delete of one period and the list of period keys.
"""

from __future__ import annotations

MIGRATIONS: list[list[str]] = [
    # 1: mentions, their areas, full-text index, issues, rankings, job state
    [
        """
        CREATE TABLE mentions (
            rid INTEGER PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            source TEXT NOT NULL,
            url TEXT NOT NULL,
            title TEXT NOT NULL,
            text TEXT NOT NULL,
            published_at TEXT NOT NULL,
            crawled_at TEXT NOT NULL,
            language TEXT NOT NULL,
            author TEXT,
            civic INTEGER,
            civic_score REAL,
            sentiment TEXT,
            sentiment_score REAL,
            topic TEXT,
            department TEXT,
            locations TEXT NOT NULL DEFAULT '[]',
            areas TEXT NOT NULL DEFAULT '[]',
            issue_id TEXT,
            processed_at TEXT
        )
        """,
        "CREATE INDEX mentions_published ON mentions(published_at, rid)",
        "CREATE INDEX mentions_topic ON mentions(topic, published_at)",
        "CREATE INDEX mentions_department ON mentions(department, published_at)",
        "CREATE INDEX mentions_sentiment ON mentions(sentiment, published_at)",
        "CREATE INDEX mentions_source ON mentions(source, published_at)",
        "CREATE INDEX mentions_issue ON mentions(issue_id, published_at)",
        "CREATE INDEX mentions_unprocessed ON mentions(crawled_at, id) WHERE processed_at IS NULL",
        """
        CREATE TABLE mention_areas (
            area_id TEXT NOT NULL,
            published_at TEXT NOT NULL,
            mention_rid INTEGER NOT NULL REFERENCES mentions(rid) ON DELETE CASCADE,
            PRIMARY KEY (area_id, published_at, mention_rid)
        ) WITHOUT ROWID
        """,
        "CREATE INDEX mention_areas_mention ON mention_areas(mention_rid, area_id)",
        """
        CREATE VIRTUAL TABLE mentions_fts USING fts5(
            title, text, content='mentions', content_rowid='rid',
            tokenize='unicode61 remove_diacritics 2'
        )
        """,
        """
        CREATE TABLE issues (
            id TEXT PRIMARY KEY,
            label TEXT NOT NULL,
            topic TEXT NOT NULL,
            department TEXT,
            area_ids TEXT NOT NULL,
            keywords TEXT NOT NULL,
            first_seen TEXT NOT NULL,
            last_seen TEXT NOT NULL,
            mention_count INTEGER NOT NULL
        )
        """,
        "CREATE INDEX issues_last_seen ON issues(last_seen)",
        """
        CREATE TABLE rankings (
            area_id TEXT NOT NULL,
            period TEXT NOT NULL,
            period_key TEXT NOT NULL,
            rank INTEGER NOT NULL,
            issue_id TEXT NOT NULL,
            score REAL NOT NULL,
            score_parts TEXT NOT NULL,
            mention_count INTEGER NOT NULL,
            source_count INTEGER NOT NULL,
            sentiment_counts TEXT NOT NULL,
            evidence_ids TEXT NOT NULL,
            PRIMARY KEY (period, period_key, area_id, rank)
        ) WITHOUT ROWID
        """,
        """
        CREATE TABLE state (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL,
            updated_at TEXT NOT NULL
        ) WITHOUT ROWID
        """,
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID",
    ],
    # 2: syndication — the story a mention belongs to (the same story republished by several outlets)
    [
        "ALTER TABLE mentions ADD COLUMN story_id TEXT",
        "CREATE INDEX mentions_story ON mentions(story_id)",
    ],
    # 3: the probability of the named topic and department (a low department_score marks a
    # routing to check); NULL for mentions classified before this version
    [
        "ALTER TABLE mentions ADD COLUMN topic_score REAL",
        "ALTER TABLE mentions ADD COLUMN department_score REAL",
    ],
]

SCHEMA_VERSION = len(MIGRATIONS)

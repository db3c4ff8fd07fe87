"""Scrapy settings of the Lắng Nghe crawler: polite by default, pipelines switched on.

Used by `crawlers.run` (``python -m crawlers.run``); ``LANGNGHE_DB_PATH`` is set there from
``--db``, and ``JOBDIR`` from ``--jobdir`` for crawls that can be stopped and resumed.
"""

BOT_NAME = "langnghe"
SPIDER_MODULES = ["crawlers.spiders"]
NEWSPIDER_MODULE = "crawlers.spiders"

USER_AGENT = "LangNghe/0.1 (+https://github.com/langnghe)"
ROBOTSTXT_OBEY = True

# politeness
CONCURRENT_REQUESTS = 16
CONCURRENT_REQUESTS_PER_DOMAIN = 4
DOWNLOAD_DELAY = 0.5
DOWNLOAD_DELAY_JITTER = 0.5  # ±50 % random variation of the delay
AUTOTHROTTLE_ENABLED = True
AUTOTHROTTLE_START_DELAY = 1.0
AUTOTHROTTLE_MAX_DELAY = 30.0
AUTOTHROTTLE_TARGET_CONCURRENCY = 2.0
DOWNLOAD_TIMEOUT = 30
DOWNLOAD_MAXSIZE = 16 * 1024 * 1024
RETRY_ENABLED = True
RETRY_TIMES = 3
RETRY_HTTP_CODES = [500, 502, 503, 504, 522, 524, 408, 429]
RETRY_BACKOFF_BASE = 2.0  # seconds before the first retry; doubled each time (± 25 % jitter)
RETRY_BACKOFF_MAX = 120.0  # cap, also for a server's Retry-After
REDIRECT_MAX_TIMES = 5

HTTPCACHE_ENABLED = False
COOKIES_ENABLED = False
TELNETCONSOLE_ENABLED = False
LOG_LEVEL = "INFO"
# Scrapy >= 2.12 always uses this fingerprinter; kept for older Scrapy versions.
REQUEST_FINGERPRINTER_IMPLEMENTATION = "2.7"
FEED_EXPORT_ENCODING = "utf-8"

DOWNLOADER_MIDDLEWARES = {
    "crawlers.middlewares.IncrementalMiddleware": 90,  # before robots.txt (100): no fetch at all
    "crawlers.middlewares.BackoffDelayMiddleware": 95,  # a retried request waits its backoff here
    "scrapy.downloadermiddlewares.retry.RetryMiddleware": None,
    "crawlers.middlewares.BackoffRetryMiddleware": 550,  # Scrapy's retry slot
}
ITEM_PIPELINES = {
    "crawlers.pipelines.DuplicateFilterPipeline": 100,
    "crawlers.pipelines.MentionPipeline": 300,
}

# Lắng Nghe
LANGNGHE_DB_PATH = None  # set by crawlers.run from --db
LANGNGHE_BATCH_SIZE = 50  # mentions per write
LANGNGHE_SOURCES: dict[str, str] = {}  # URL prefix / host:port / host → source name
LANGNGHE_RECRAWL = False  # true: fetch articles again even when stored
LANGNGHE_RECRAWL_HOURS = 48.0  # stored articles this recent are re-fetched (conditional GET) ...
LANGNGHE_RECRAWL_MIN_INTERVAL_S = 3600.0  # ... at most this often
LANGNGHE_DEDUP = True  # near-duplicate detection and story grouping in MentionPipeline

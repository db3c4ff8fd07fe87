"""Social platforms through their official APIs: Facebook public pages (Graph API) and YouTube
(Data API v3). Each collector pages through the API, backs off on rate limits, stops a source
whose credentials have expired (with a logged error naming it), and writes mentions to the store.

Credentials are the operator's, read from the environment (see `SocialConfig.from_env`), never
logged: every URL that reaches a log has its ``access_token``/``key`` replaced by ``***``.
"""

from crawlers.social.base import ApiError, QuotaExceeded, RateLimited, SocialConfig, SocialStats, TokenExpired, redact
from crawlers.social.facebook import FacebookCollector, crawl_facebook
from crawlers.social.youtube import YouTubeCollector, crawl_youtube

__all__ = ["ApiError", "FacebookCollector", "QuotaExceeded", "RateLimited", "SocialConfig", "SocialStats",
           "TokenExpired", "YouTubeCollector", "crawl_facebook", "crawl_youtube", "redact"]

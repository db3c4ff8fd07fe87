"""A realistic, deterministic three weeks of enriched civic mentions for the page, report and
browser tests (and the screenshots): written through the Store interface, then grouped into
issues and ranked by the real rank job (nlp.ranking.update_rankings)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from langnghe.records import Mention, mention_id
from nlp.ranking import update_rankings
from storage.base import Store

VN = ZoneInfo("Asia/Ho_Chi_Minh")
END_DAY = date(2025, 11, 20)  # the last day with mentions (a Thursday, ISO week 2025-W47)
DAYS = 21
SOURCES = ("vnexpress.net", "tuoitre.vn", "thanhnien.vn", "nld.com.vn", "plo.vn", "sggp.org.vn",
           "facebook:group/cu-dan-sai-gon", "hotline-1022")


@dataclass(frozen=True)
class Scenario:
    """One concern: where, what, who is in charge, and how many mentions each day (oldest first)."""

    key: str
    topic: str
    department: str
    areas: tuple[str, ...]  # fd:… then w:…
    titles: tuple[str, ...]
    body: str
    profile: tuple[int, ...]  # mentions per day over the last len(profile) days
    negative: float = 0.8  # share of negative mentions (the rest neutral, or positive if `positive`)
    positive: bool = False


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("ngap-nhc", "flooding", "construction", ("fd:binh-thanh", "w:26956"),
             ("Ngập nước sâu trên đường Nguyễn Hữu Cảnh sau mưa lớn",
              "Đường Nguyễn Hữu Cảnh lại ngập nước sau cơn mưa chiều",
              "Người dân bức xúc vì đường Nguyễn Hữu Cảnh ngập nước kéo dài"),
             "Cơn mưa lớn khiến đường Nguyễn Hữu Cảnh ngập nước sâu, nhiều xe máy chết máy giữa dòng; "
             "cư dân phường Thạnh Mỹ Tây phản ánh tình trạng ngập nước lặp lại dù cống mới đã thi công.",
             (1, 0, 1, 1, 0, 1, 1, 2, 1, 1, 2, 1, 2, 2, 3, 2, 3, 4, 5, 7, 9)),
    Scenario("trieu-q7", "flooding", "construction", ("fd:quan-7", "w:27475"),
             ("Triều cường gây ngập đường Huỳnh Tấn Phát",
              "Đỉnh triều cường làm ngập nhiều tuyến đường Quận 7 cũ"),
             "Đỉnh triều cường vượt báo động III khiến đường Huỳnh Tấn Phát, Trần Xuân Soạn ngập nước "
             "vào giờ tan tầm; người dân phường Tân Hưng phải dắt xe qua đoạn ngập.",
             (2, 3, 2, 2, 3, 2, 1, 2, 3, 2, 2, 3, 2, 2, 3, 2, 2, 3, 2, 3, 2)),
    Scenario("ket-xe-tsn", "traffic", "construction", ("fd:tan-binh", "w:26968"),
             ("Kẹt xe nghiêm trọng ở cửa ngõ sân bay Tân Sơn Nhất",
              "Ùn tắc kéo dài trên đường Trường Sơn vào sân bay Tân Sơn Nhất"),
             "Hàng nghìn phương tiện nhích từng mét trên đường Trường Sơn, hành khách phải đi bộ kéo vali "
             "vào nhà ga Tân Sơn Nhất; kẹt xe kéo dài hơn hai giờ.",
             (4, 3, 4, 5, 4, 3, 4, 5, 4, 4, 3, 4, 5, 4, 4, 5, 4, 3, 4, 4, 3)),
    Scenario("rac-kenh", "environment", "agriculture_environment", ("fd:quan-3", "w:27142"),
             ("Rác thải ùn ứ trên kênh Nhiêu Lộc – Thị Nghè",
              "Kênh Nhiêu Lộc – Thị Nghè bốc mùi hôi vì rác thải"),
             "Rác nổi kín mặt kênh Nhiêu Lộc – Thị Nghè đoạn qua phường Nhiêu Lộc, mùi hôi bốc lên mỗi chiều; "
             "người dân đề nghị vớt rác thải thường xuyên.",
             (0, 1, 1, 2, 1, 2, 2, 1, 2, 2, 1, 2, 2, 1, 2, 1, 2, 1, 1, 2, 1), negative=0.6),
    Scenario("cup-nuoc-gv", "utilities", "construction", ("fd:go-vap", "w:26884"),
             ("Cúp nước sinh hoạt kéo dài ở Gò Vấp",
              "Người dân Gò Vấp mất nước sinh hoạt nhiều ngày"),
             "Hàng trăm hộ dân phường Gò Vấp phản ánh bị cúp nước sinh hoạt từ sáng, chưa có thông báo "
             "của công ty cấp nước; người dân phải mua nước bình để dùng.",
             (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 3, 4, 5, 6)),
    Scenario("via-he-q1", "urban_order", "commune_pc", ("fd:quan-1", "w:26743"),
             ("Lấn chiếm vỉa hè quanh chợ Bến Thành",
              "Vỉa hè quanh chợ Bến Thành bị hàng quán lấn chiếm"),
             "Hàng quán bày bán tràn vỉa hè quanh chợ Bến Thành, người đi bộ phải xuống lòng đường; "
             "phường Bến Thành cho biết sẽ ra quân lập lại trật tự vỉa hè.",
             (1, 1, 2, 1, 1, 2, 1, 1, 2, 1, 1, 2, 1, 1, 2, 1, 1, 1, 2, 1, 1), negative=0.5),
    Scenario("thu-tuc-td", "admin_services", "home_affairs", ("fd:thu-duc", "w:26824"),
             ("Người dân chờ cả buổi để làm thủ tục hành chính ở Thủ Đức",
              "Thủ tục hành chính tại phường Thủ Đức chậm trễ"),
             "Nhiều người dân phản ánh phải chờ cả buổi sáng để nộp hồ sơ thủ tục hành chính tại trung tâm "
             "phục vụ hành chính công phường Thủ Đức vì hệ thống trục trặc.",
             (0, 0, 1, 0, 1, 1, 0, 1, 1, 1, 0, 1, 1, 1, 2, 1, 1, 2, 1, 2, 2), negative=0.7),
    Scenario("ngo-doc-bt", "food_safety", "food_safety", ("fd:binh-tan", "w:27442"),
             ("Nhiều học sinh nhập viện nghi ngộ độc thực phẩm ở Bình Tân",
              "Nghi ngộ độc thực phẩm sau bữa trưa bán trú tại Bình Tân"),
             "Hàng chục học sinh một trường tiểu học ở phường Bình Tân nhập viện với triệu chứng đau bụng, "
             "nôn ói sau bữa trưa bán trú; cơ quan chức năng lấy mẫu thực phẩm để kiểm nghiệm.",
             (0,) * 19 + (4, 6), negative=0.9),
    Scenario("xe-buyt-dien", "traffic", "construction", ("fd:quan-1", "w:26740"),
             ("Tuyến xe buýt điện mới từ Sài Gòn được người dân khen",
              "Xe buýt điện sạch sẽ, đúng giờ được hành khách đánh giá cao"),
             "Hành khách khen xe buýt điện sạch sẽ, đúng giờ, giá vé hợp lý trên tuyến từ phường Sài Gòn "
             "đi Thủ Đức; nhiều người chuyển từ xe máy sang đi xe buýt.",
             (0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 2, 1, 2, 1, 1, 2, 1, 2, 1, 2, 2), negative=0.2, positive=True),
    Scenario("bui-tdm", "environment", "agriculture_environment", ("fd:thu-dau-mot", "w:25747"),
             ("Bụi mù mịt từ công trường ở Thủ Dầu Một",
              "Công trình thi công gây bụi, người dân Thủ Dầu Một khổ sở"),
             "Xe ben ra vào công trường làm bụi mù mịt trên đại lộ Bình Dương đoạn qua phường Thủ Dầu Một, "
             "người dân phải đóng cửa cả ngày.",
             (0, 1, 0, 1, 1, 0, 1, 1, 0, 1, 1, 1, 0, 1, 1, 1, 1, 2, 1, 1, 2), negative=0.75),
)


def scenario_mentions(end_day: date = END_DAY, seed: int = 7) -> list[Mention]:
    """The enriched mentions of every scenario, deterministic for a seed."""
    rng = random.Random(seed)
    out: list[Mention] = []
    for sc in SCENARIOS:
        first = end_day - timedelta(days=len(sc.profile) - 1)
        for offset, count in enumerate(sc.profile):
            day = first + timedelta(days=offset)
            for k in range(count):
                source = SOURCES[rng.randrange(len(SOURCES))]
                url = f"https://{source.replace(':', '-').replace('/', '-')}/{sc.key}-{day:%Y%m%d}-{k}.html"
                published = datetime.combine(day, time(6 + (k * 3) % 15, rng.randrange(60)), VN)
                roll = rng.random()
                sentiment = "negative" if roll < sc.negative else "positive" if sc.positive else "neutral"
                title = sc.titles[(offset + k) % len(sc.titles)]
                out.append(Mention(
                    id=mention_id(url), source=source, url=url, title=title,
                    text=f"{sc.body} (Ghi nhận ngày {day:%d/%m/%Y}, phản ánh số {k + 1}.)",
                    published_at=published, crawled_at=published + timedelta(minutes=20),
                    civic=True, civic_score=0.9, sentiment=sentiment,
                    sentiment_score=round(0.6 + 0.4 * rng.random(), 3), topic=sc.topic,
                    department=sc.department, areas=["hcmc", *sc.areas],
                    # every fourth report of a day is one the model routed with little confidence
                    department_score=0.35 if k % 4 == 3 else 0.9,
                    processed_at=published + timedelta(minutes=30)))
    return out


def populate(store: Store, end_day: date = END_DAY) -> dict[str, object]:
    """Write the scenario mentions and run the rank job over the whole span (issue discovery on
    words alone, upkeep with small LSA vectors: the sentence encoder would take minutes on CI's
    CPUs); returns its summary."""
    mentions = scenario_mentions(end_day)
    store.write_mentions(mentions)
    now = datetime.combine(end_day, time(23, 0), VN)
    extra: dict[str, Any] = {}
    try:
        from nlp.discovery import DiscoveryConfig, LsaEmbedder
    except ImportError:  # the rank job before issue discovery had a configuration
        pass
    else:  # vectors for issue upkeep: LSA fitted on these texts, not the (slow) sentence encoder
        extra["config"] = DiscoveryConfig(backend="lexical")
        extra["embedder"] = LsaEmbedder(n_components=32).fit([m.content for m in mentions])
    return update_rankings(store, now=now, days=DAYS, **extra)

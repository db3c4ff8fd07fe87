"""Words of the pages, briefings and digests: Vietnamese first, English second."""

from __future__ import annotations

TEXT: dict[str, dict[str, str]] = {
    "vi": {
        "site": "Lắng Nghe", "nav_top": "Top 10", "nav_map": "Bản đồ", "nav_trends": "Xu hướng",
        "nav_briefing": "Bản tin sở, ngành", "nav_digest": "Bản tin tuần", "nav_api": "Tài liệu API",
        "language": "English", "other_lang": "en",
        "issue": "Vấn đề", "topic": "Lĩnh vực", "department": "Cơ quan phụ trách", "areas": "Khu vực",
        "keywords": "Từ khóa", "first_seen": "Xuất hiện lần đầu", "last_seen": "Gần nhất",
        "mentions": "lượt nhắc", "mentions_title": "Lượt nhắc", "sources": "nguồn",
        "history": "Diễn biến", "evidence": "Ý kiến, bài viết", "rankings": "Thứ hạng",
        "volume_title": "Lượt nhắc mỗi ngày theo sắc thái", "sentiment_title": "Sắc thái theo ngày",
        "net_axis": "tích cực − tiêu cực, trên tổng", "no_issue": "Không tìm thấy vấn đề",
        "rank_in": "hạng {rank} tại {area}", "day": "ngày", "week": "tuần",
        "map_title": "Bản đồ ý kiến theo phường, xã", "map_lead":
            "Số lượt nhắc các vấn đề công theo phường, xã hiện nay; đường viền đậm là quận, huyện cũ.",
        "view": "Phạm vi", "view_core": "22 quận, huyện cũ của TP.HCM", "view_all": "Toàn thành phố",
        "metric": "Chỉ số", "metric_all": "Tất cả lượt nhắc", "metric_negative": "Lượt nhắc tiêu cực",
        "from": "Từ ngày", "to": "Đến ngày", "show": "Xem", "legend": "Chú giải",
        "none": "không có", "top_wards": "Phường, xã được nhắc nhiều nhất", "ward": "Phường, xã",
        "negative": "tiêu cực", "trends_title": "Xu hướng lượt nhắc và sắc thái",
        "by_topic": "Theo lĩnh vực", "area": "Khu vực", "days": "Số ngày",
        "briefing_title": "Bản tin buổi sáng", "briefing_for": "Bản tin sáng {day} — {department}",
        "briefing_lead": "Các vấn đề thuộc {department} trong ngày {since}, so với 7 ngày trước đó.",
        "choose_department": "Chọn cơ quan", "new_issues": "Vấn đề mới", "rising_issues": "Vấn đề đang tăng",
        "issues": "vấn đề",
        "its_issues": "Các vấn đề trong ngày", "needs_response": "Ý kiến tiêu cực cần phản hồi",
        "nothing": "Không có.", "yesterday": "trong ngày", "prev7": "trung bình 7 ngày trước",
        "growth": "tăng", "open_issue": "Xem vấn đề", "email": "Gửi e-mail", "send": "Gửi",
        "sent": "Đã gửi tới {to}", "recipient": "Người nhận",
        "digest_title": "Bản tin tuần cho lãnh đạo", "digest_for": "Bản tin tuần {week} ({start} – {end})",
        "digest_lead": "Tổng hợp ý kiến người dân TP.HCM trong tuần, so với tuần trước.",
        "city_top": "10 vấn đề nổi bật toàn thành phố", "area_tops": "10 vấn đề nổi bật theo quận, huyện cũ",
        "wow": "So với tuần trước", "this_week": "Tuần này", "last_week": "Tuần trước",
        "total_mentions": "Tổng lượt nhắc", "negative_share": "Tỉ lệ tiêu cực", "issues_count": "Số vấn đề",
        "rank": "Hạng", "change": "Thay đổi", "new": "mới", "pdf": "Tải PDF", "week_of": "Tuần",
        "no_ranking": "Chưa có xếp hạng cho tuần này.", "score": "Điểm",
        "generated": "Tạo lúc {when} bởi Lắng Nghe.", "footer": "Dữ liệu công khai; mã nguồn mở.",
        "text_note": "Bản đầy đủ có biểu đồ và bản đồ: xem tệp PDF đính kèm hoặc trang web.",
        "source": "Nguồn", "published": "Đăng lúc", "sentiment": "Sắc thái",
        "back_top": "Về Top 10", "last_n": "{n} ngày qua", "prev_n": "{n} ngày trước đó",
        "check_routing": "cần kiểm tra phân công",
        "check_routing_hint": "Mô hình chưa chắc ý kiến này thuộc cơ quan nào (độ tin cậy {score})",
    },
    "en": {
        "site": "Lắng Nghe", "nav_top": "Top 10", "nav_map": "Map", "nav_trends": "Trends",
        "nav_briefing": "Department briefing", "nav_digest": "Weekly digest", "nav_api": "API docs",
        "language": "Tiếng Việt", "other_lang": "vi",
        "issue": "Issue", "topic": "Topic", "department": "Responsible agency", "areas": "Areas",
        "keywords": "Keywords", "first_seen": "First seen", "last_seen": "Last seen",
        "mentions": "mentions", "mentions_one": "mention", "mentions_title": "Mentions",
        "sources": "sources", "sources_one": "source",
        "history": "History", "evidence": "Mentions and articles", "rankings": "Rankings",
        "volume_title": "Mentions per day by sentiment", "sentiment_title": "Sentiment per day",
        "net_axis": "positive − negative, over total", "no_issue": "Unknown issue",
        "rank_in": "rank {rank} in {area}", "day": "day", "week": "week",
        "map_title": "Map of concerns by ward", "map_lead":
            "Mentions of public issues per current ward or commune; bold outlines are the former districts.",
        "view": "Extent", "view_core": "The 22 former HCMC districts", "view_all": "Whole city",
        "metric": "Measure", "metric_all": "All mentions", "metric_negative": "Negative mentions",
        "from": "From", "to": "To", "show": "Show", "legend": "Legend",
        "none": "none", "top_wards": "Most mentioned wards", "ward": "Ward",
        "negative": "negative", "trends_title": "Mention volume and sentiment over time",
        "by_topic": "By topic", "area": "Area", "days": "Days",
        "briefing_title": "Morning briefing", "briefing_for": "Morning briefing {day} — {department}",
        "briefing_lead": "Issues for {department} on {since}, compared with the 7 days before.",
        "choose_department": "Choose an agency", "new_issues": "New issues", "rising_issues": "Rising issues",
        "issues": "issues", "issues_one": "issue", "new_issues_one": "New issue", "rising_issues_one": "Rising issue",
        "its_issues": "Issues of the day", "needs_response": "Negative mentions needing a response",
        "nothing": "None.", "yesterday": "that day", "prev7": "daily average of the 7 days before",
        "growth": "up", "open_issue": "Open issue", "email": "Send by e-mail", "send": "Send",
        "sent": "Sent to {to}", "recipient": "Recipient",
        "digest_title": "Weekly leadership digest", "digest_for": "Weekly digest {week} ({start} – {end})",
        "digest_lead": "What Ho Chi Minh City residents raised this week, compared with last week.",
        "city_top": "City-wide top 10", "area_tops": "Top 10 by former district",
        "wow": "Week over week", "this_week": "This week", "last_week": "Last week",
        "total_mentions": "Total mentions", "negative_share": "Negative share", "issues_count": "Issues",
        "rank": "Rank", "change": "Change", "new": "new", "pdf": "Download PDF", "week_of": "Week",
        "no_ranking": "No ranking for this week yet.", "score": "Score",
        "generated": "Generated {when} by Lắng Nghe.", "footer": "Public data; open source.",
        "text_note": "The full version with charts and the map: see the attached PDF or the web page.",
        "source": "Source", "published": "Published", "sentiment": "Sentiment",
        "back_top": "Back to the top 10", "last_n": "last {n} days", "prev_n": "the {n} days before",
        "check_routing": "check routing",
        "check_routing_hint": "The model is unsure which agency this mention belongs to (confidence {score})",
    },
}


def lang_of(value: str | None) -> str:
    """'en' for English, Vietnamese otherwise."""
    return "en" if value == "en" else "vi"


def t(lang: str) -> dict[str, str]:
    return TEXT[lang_of(lang)]


def unit(words: dict[str, str], key: str, count: object) -> str:
    """The word counted by `count` ("1 mention", "3 mentions"): the `<key>_one` form where the
    language has one (English) and the count is 1; Vietnamese words do not change."""
    return words.get(f"{key}_one", words[key]) if count == 1 else words[key]

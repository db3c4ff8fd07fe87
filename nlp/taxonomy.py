"""The civic taxonomy: topic, department and sentiment codes with Vietnamese and English labels.

The codes are those of the annotation guide (shared data/civic/GUIDE.md, v1.1): the classifiers
emit them, the store keeps them and the API validates against them. Labels are for display.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


@dataclass(frozen=True)
class Label:
    """One code with its display names."""

    code: str
    vi: str
    en: str

    def name(self, lang: str = "vi") -> str:
        """The display name in `lang` ("vi" or "en"; anything else falls back to Vietnamese)."""
        return self.en if lang == "en" else self.vi


TOPICS: dict[str, Label] = {
    label.code: label
    for label in (
        Label("flooding", "Ngập nước, triều cường", "Flooding and tides"),
        Label("traffic", "Giao thông, ùn tắc", "Traffic and congestion"),
        Label("infrastructure", "Hạ tầng đô thị", "Urban infrastructure"),
        Label("environment", "Môi trường, rác thải, tiếng ồn", "Environment, waste and noise"),
        Label("land_housing", "Đất đai, nhà ở, quy hoạch", "Land, housing and planning"),
        Label("urban_order", "Trật tự đô thị, lấn chiếm vỉa hè", "Urban order and sidewalks"),
        Label("public_security", "An ninh trật tự, cháy nổ", "Public security and fires"),
        Label("admin_services", "Thủ tục hành chính, cán bộ", "Administrative services and officials"),
        Label("health", "Y tế", "Health"),
        Label("food_safety", "An toàn thực phẩm", "Food safety"),
        Label("education", "Giáo dục", "Education"),
        Label("utilities", "Điện, nước, viễn thông", "Electricity, water and telecoms"),
        Label("livelihood", "Việc làm, đời sống, an sinh", "Jobs, living costs and welfare"),
        Label("other_civic", "Vấn đề công khác", "Other public matters"),
        Label("not_civic", "Không phải vấn đề công", "Not a public matter"),
    )
}

DEPARTMENTS: dict[str, Label] = {
    label.code: label
    for label in (
        Label("construction", "Sở Xây dựng", "Department of Construction"),
        Label("agriculture_environment", "Sở Nông nghiệp và Môi trường",
              "Department of Agriculture and Environment"),
        Label("planning_architecture", "Sở Quy hoạch – Kiến trúc",
              "Department of Planning and Architecture"),
        Label("health", "Sở Y tế", "Department of Health"),
        Label("food_safety", "Ban An toàn thực phẩm", "Food Safety Authority"),
        Label("education", "Sở Giáo dục và Đào tạo", "Department of Education and Training"),
        Label("home_affairs", "Sở Nội vụ", "Department of Home Affairs"),
        Label("industry_trade", "Sở Công Thương", "Department of Industry and Trade"),
        Label("finance", "Sở Tài chính", "Department of Finance"),
        Label("science_technology", "Sở Khoa học và Công nghệ", "Department of Science and Technology"),
        Label("justice", "Sở Tư pháp", "Department of Justice"),
        Label("culture_sports", "Sở Văn hóa và Thể thao", "Department of Culture and Sports"),
        Label("tourism", "Sở Du lịch", "Department of Tourism"),
        Label("inspectorate", "Thanh tra Thành phố", "City Inspectorate"),
        Label("police", "Công an Thành phố", "City Police"),
        Label("commune_pc", "UBND phường/xã", "Ward/commune People's Committee"),
        Label("city_pc", "UBND Thành phố", "City People's Committee"),
        Label("none", "Không thuộc cơ quan nào", "No agency"),
    )
}

SENTIMENT_LABELS: dict[str, Label] = {
    label.code: label
    for label in (
        Label("negative", "Tiêu cực", "Negative"),
        Label("neutral", "Trung lập", "Neutral"),
        Label("positive", "Tích cực", "Positive"),
    )
}

# Enumerations for validation (e.g. FastAPI query parameters); values are the codes above.
Topic = StrEnum("Topic", {code: code for code in TOPICS})  # type: ignore[misc]
Department = StrEnum("Department", {code: code for code in DEPARTMENTS})  # type: ignore[misc]
Sentiment = StrEnum("Sentiment", {code: code for code in SENTIMENT_LABELS})  # type: ignore[misc]

CIVIC_TOPICS = tuple(code for code in TOPICS if code != "not_civic")


def topic_name(code: str | None, lang: str = "vi") -> str:
    """Display name of a topic code; unknown codes are shown as they are, None as an empty string."""
    if not code:
        return ""
    label = TOPICS.get(code)
    return label.name(lang) if label else code


def department_name(code: str | None, lang: str = "vi") -> str:
    """Display name of a department code; unknown codes are shown as they are."""
    if not code:
        return ""
    label = DEPARTMENTS.get(code)
    return label.name(lang) if label else code


def sentiment_name(code: str | None, lang: str = "vi") -> str:
    """Display name of a sentiment code; unknown codes are shown as they are."""
    if not code:
        return ""
    label = SENTIMENT_LABELS.get(code)
    return label.name(lang) if label else code


def labels(lang: str = "vi") -> dict[str, dict[str, str]]:
    """All display names in one language, keyed by kind then code (for templates and scripts)."""
    return {
        "topic": {code: label.name(lang) for code, label in TOPICS.items()},
        "department": {code: label.name(lang) for code, label in DEPARTMENTS.items()},
        "sentiment": {code: label.name(lang) for code, label in SENTIMENT_LABELS.items()},
    }

"""Cue phrases of the civic taxonomy, from the annotation guide (``GUIDE.md`` of the civic set).

The guide names, for each civic topic and each department, the words that define it ("ngập nước,
triều cường, thoát nước…" for flooding). With a few hundred annotated items many of these words
occur once or never in training, so the topic and department heads also read one count per class:
how many of its cue phrases the text contains (matched on the folded text, so "ngap nuoc" counts).
The learned weights of these counts are part of the trained heads; the phrases themselves carry no
weight here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from functools import lru_cache

import numpy as np
import numpy.typing as npt

from nlp.text import fold

TOPIC_CUES: Mapping[str, tuple[str, ...]] = {
    "flooding": (
        "ngập", "ngập nước", "ngập úng", "triều cường", "thoát nước", "chống ngập", "sạt lở",
        "bờ kè", "kè", "mưa lớn", "nước dâng", "rốn ngập", "cống thoát", "lũ", "lụt", "đê bao",
    ),
    "traffic": (
        "ùn tắc", "kẹt xe", "tai nạn giao thông", "va chạm", "xe buýt", "metro", "bến xe",
        "bãi giữ xe", "giao thông", "tắc đường", "đèn tín hiệu", "vượt đèn đỏ", "csgt",
        "cảnh sát giao thông", "xe khách", "xe tải", "container", "phân luồng", "lái xe", "tài xế",
        "mũ bảo hiểm", "nồng độ cồn", "đăng kiểm",
    ),
    "infrastructure": (
        "đường hư", "ổ gà", "ổ voi", "vỉa hè hư", "cầu", "đèn chiếu sáng", "cây xanh", "cây đổ",
        "nắp cống", "thi công", "công trình", "chậm tiến độ", "đào đường", "mặt đường", "nâng cấp",
        "mở rộng đường", "hầm", "cầu vượt", "dự án giao thông", "xuống cấp", "sụt lún",
    ),
    "environment": (
        "ô nhiễm", "tiếng ồn", "karaoke", "rác", "rác thải", "bãi rác", "vệ sinh môi trường",
        "kênh rạch", "mùi hôi", "khói bụi", "khí thải", "nước thải", "xả thải", "môi trường",
        "chất thải", "bụi mịn", "xử lý rác", "hôi thối",
    ),
    "land_housing": (
        "đất đai", "nhà ở", "chung cư", "quy hoạch", "giải tỏa", "đền bù", "bồi thường",
        "xây dựng trái phép", "sai phép", "không phép", "sổ hồng", "sổ đỏ", "giấy chứng nhận quyền sử dụng",
        "thu hồi đất", "tái định cư", "nhà ở xã hội", "quy hoạch treo", "lấn chiếm đất", "cưỡng chế",
        "căn hộ", "dự án nhà", "chủ đầu tư",
    ),
    "urban_order": (
        "lấn chiếm vỉa hè", "lấn chiếm lòng đường", "hàng rong", "quảng cáo trái phép", "trật tự đô thị",
        "lấn chiếm", "buôn bán trên vỉa hè", "vỉa hè", "lòng đường", "chợ tự phát", "biển quảng cáo",
        "tụ tập", "đậu xe trái phép",
    ),
    "public_security": (
        "trộm", "cướp", "lừa đảo", "đánh nhau", "ma túy", "tín dụng đen", "tội phạm", "cháy", "nổ",
        "hỏa hoạn", "khởi tố", "bắt giữ", "bắt tạm giam", "nghi phạm", "bị cáo", "hung thủ", "giết",
        "công an", "truy nã", "cờ bạc", "buôn lậu", "hàng giả", "án mạng", "đâm chết", "chém",
    ),
    "admin_services": (
        "thủ tục hành chính", "hồ sơ", "giấy tờ", "cấp phép", "hộ tịch", "căn cước", "công chứng",
        "thái độ cán bộ", "nhũng nhiễu", "tham nhũng", "dịch vụ công", "một cửa", "hối lộ",
        "nhận hối lộ", "tham ô", "lợi dụng chức vụ", "sai phạm", "cán bộ", "công chức", "kỷ luật",
        "thanh tra", "khiếu nại", "tố cáo", "hộ khẩu", "làm giấy",
    ),
    "health": (
        "bệnh viện", "khám chữa bệnh", "dịch bệnh", "bảo hiểm y tế", "thuốc", "y tế", "bác sĩ",
        "bệnh nhân", "sốt xuất huyết", "tiêm chủng", "vắc xin", "văcxin", "dịch", "cấp cứu", "trạm y tế",
        "ca mắc", "điều trị", "sức khỏe",
    ),
    "food_safety": (
        "ngộ độc thực phẩm", "ngộ độc", "thực phẩm bẩn", "phụ gia", "vệ sinh an toàn thực phẩm",
        "an toàn thực phẩm", "thực phẩm", "hóa chất cấm", "hàn the", "thịt bẩn", "không rõ nguồn gốc",
        "chất cấm", "bếp ăn", "quản lý thị trường",
    ),
    "education": (
        "trường", "lớp học", "học phí", "tuyển sinh", "giáo viên", "học sinh", "sinh viên",
        "quá tải trường", "thi tốt nghiệp", "giáo dục", "nhà trường", "phụ huynh", "mầm non", "đại học",
        "hiệu trưởng", "sách giáo khoa",
    ),
    "utilities": (
        "điện", "nước sạch", "viễn thông", "internet", "mất điện", "cúp điện", "cúp nước", "mất nước",
        "chất lượng nước", "giá điện", "giá nước", "nước máy", "sawaco", "evn", "cấp nước", "điện lực",
        "cáp quang",
    ),
    "livelihood": (
        "việc làm", "tiền lương", "lương", "giá cả", "an sinh xã hội", "hỗ trợ người nghèo", "hộ nghèo",
        "lao động", "hưu trí", "công nhân", "thất nghiệp", "trợ cấp", "bảo hiểm xã hội", "giá xăng",
        "giá gas", "lạm phát", "chỉ số giá", "cpi", "người lao động", "khó khăn",
    ),
    "other_civic": (
        "văn hóa", "du lịch", "thể thao", "chính sách", "kinh tế", "ngân sách", "hội đồng nhân dân",
        "quốc hội", "lễ hội", "di tích", "nghị quyết", "đại biểu",
    ),
}

DEPARTMENT_CUES: Mapping[str, tuple[str, ...]] = {
    "construction": (
        "đường", "cầu", "thoát nước", "chống ngập", "giao thông", "xe buýt", "metro", "chiếu sáng",
        "cây xanh", "cấp phép xây dựng", "công trình", "sở xây dựng", "sở giao thông", "nước sạch",
        "cấp nước", "sawaco", "hạ tầng", "thi công", "xây dựng trái phép", "sai phép", "không phép",
    ),
    "agriculture_environment": (
        "ô nhiễm", "rác", "vệ sinh môi trường", "đất đai", "bồi thường", "thu hồi đất", "tài nguyên nước",
        "nông nghiệp", "môi trường", "sở tài nguyên", "chất thải", "gia súc", "dịch bệnh gia", "thủy lợi",
        "đền bù", "sổ hồng", "sổ đỏ", "quyền sử dụng đất",
    ),
    "planning_architecture": ("quy hoạch", "quy hoạch treo", "kiến trúc", "phân khu", "đồ án"),
    "health": ("bệnh viện", "bệnh", "bảo hiểm y tế", "thuốc", "y tế", "bác sĩ", "sở y tế", "dịch"),
    "food_safety": ("ngộ độc", "thực phẩm", "an toàn thực phẩm", "phụ gia", "chất cấm"),
    "education": ("trường", "học sinh", "giáo viên", "sinh viên", "học phí", "tuyển sinh", "giáo dục"),
    "home_affairs": (
        "việc làm", "lao động", "tiền lương", "an sinh", "người nghèo", "trợ cấp", "công chức", "biên chế",
        "bảo hiểm xã hội", "công nhân",
    ),
    "industry_trade": (
        "giá cả", "chợ", "quản lý thị trường", "hàng giả", "gian lận thương mại", "điện", "xăng", "gas",
        "nhiên liệu", "siêu thị", "chỉ số giá",
    ),
    "finance": ("ngân sách", "phí", "lệ phí", "đầu tư công", "tài sản công", "thuế", "sở tài chính"),
    "science_technology": ("viễn thông", "internet", "dịch vụ công trực tuyến", "1022", "số hóa", "cáp quang"),
    "justice": ("hộ tịch", "công chứng", "trợ giúp pháp lý", "khai sinh", "kết hôn", "chứng thực"),
    "culture_sports": ("văn hóa", "thể thao", "nghệ thuật", "biểu diễn", "lễ hội", "di tích", "bài hát"),
    "tourism": ("du lịch", "du khách", "khách du lịch", "lữ hành"),
    "inspectorate": (
        "tham nhũng", "hối lộ", "tham ô", "lợi dụng chức vụ", "thanh tra", "khiếu nại", "tố cáo",
        "sai phạm", "kỷ luật", "lãng phí", "nhũng nhiễu",
    ),
    "police": (
        "công an", "trộm", "cướp", "lừa đảo", "ma túy", "khởi tố", "bắt giữ", "tạm giam", "cháy",
        "tai nạn", "csgt", "căn cước", "cư trú", "tội phạm", "bị cáo", "truy nã",
    ),
    "commune_pc": (
        "phường", "xã", "lấn chiếm", "vỉa hè", "hàng rong", "trật tự đô thị", "ubnd phường", "tổ dân phố",
    ),
    "city_pc": ("ubnd tp", "ubnd thành phố", "chủ tịch ubnd", "thành phố chỉ đạo", "hđnd", "toàn thành phố"),
}

_TOKEN = re.compile(r"\w+", re.UNICODE)


@lru_cache(maxsize=4)
def _compiled(kind: str) -> tuple[tuple[str, ...], dict[str, tuple[tuple[tuple[str, ...], int], ...]]]:
    """The classes of `kind` and an index: first folded word -> ((phrase words, class column), ...)."""
    if kind not in ("topic", "department"):
        raise ValueError(f"unknown cue kind {kind!r}")
    cues = TOPIC_CUES if kind == "topic" else DEPARTMENT_CUES
    classes = tuple(cues)
    index: dict[str, list[tuple[tuple[str, ...], int]]] = {}
    for col, cls in enumerate(classes):
        for phrase in dict.fromkeys(tuple(_TOKEN.findall(fold(p).lower())) for p in cues[cls]):
            if phrase:
                index.setdefault(phrase[0], []).append((phrase, col))
    return classes, {first: tuple(entries) for first, entries in index.items()}


def cue_counts_many(texts: Sequence[str], kinds: Sequence[str]) -> dict[str, npt.NDArray[np.float32]]:
    """`cue_counts` for several kinds at once: each text is folded and split into words once."""
    compiled = {kind: _compiled(kind) for kind in kinds}
    out = {kind: np.zeros((len(texts), len(classes)), dtype=np.float32)
           for kind, (classes, _) in compiled.items()}
    for row, text in enumerate(texts):
        words = _TOKEN.findall(fold(text).lower())
        n = len(words)
        for kind, (_, index) in compiled.items():
            counts = out[kind][row]
            for i, word in enumerate(words):
                entries = index.get(word)
                if entries is None:
                    continue
                for phrase, col in entries:
                    k = len(phrase)
                    if k == 1 or (i + k <= n and tuple(words[i: i + k]) == phrase):
                        counts[col] += 1
    return {kind: np.log1p(counts) for kind, counts in out.items()}


def cue_counts(texts: Sequence[str], kind: str) -> tuple[tuple[str, ...], npt.NDArray[np.float32]]:
    """Per text, ``log1p`` of the number of cue-phrase occurrences of each class of `kind`
    ("topic" or "department"), matched as whole folded word sequences."""
    return _compiled(kind)[0], cue_counts_many(texts, (kind,))[kind]


__all__ = ["DEPARTMENT_CUES", "TOPIC_CUES", "cue_counts", "cue_counts_many"]

"""Location recall additions: district lists, universities, schools, pagodas, hospitals."""

from __future__ import annotations

import pytest

from nlp.locations import get_resolver


def _fds(text: str, expand_lists: bool = True) -> list[tuple[str, str | None]]:
    return [(loc.text, loc.former_district) for loc in get_resolver().resolve(text, expand_lists=expand_lists)]


@pytest.mark.parametrize(("text", "expected"), [
    ("Mưa lớn gây ngập các quận 6, 8, 11 và huyện Bình Chánh",
     [("quận 6", "Quận 6"), ("8", "Quận 8"), ("11", "Quận 11"), ("huyện Bình Chánh", "Bình Chánh")]),
    ("Ùn tắc ở quận 3, 5 và 10.", [("quận 3", "Quận 3"), ("5", "Quận 5"), ("10", "Quận 10")]),
    ("Cúp điện ở Q.1, 3, Bình Thạnh", [("Q.1", "Quận 1"), ("3", "Quận 3"), ("Bình Thạnh", "Bình Thạnh")]),
    ("Các quận 2, 9 nay thuộc TP Thủ Đức", [("quận 2", "Thủ Đức"), ("9", "Thủ Đức"),
                                           ("TP Thủ Đức", "Thủ Đức")]),
])
def test_district_lists(text: str, expected: list[tuple[str, str | None]]) -> None:
    assert _fds(text) == expected
    # off by default: the annotation convention marks the cue+number span only
    assert _fds(text, expand_lists=False) == [e for e in expected if not e[0].isdigit()]


@pytest.mark.parametrize("text", [
    "Tai nạn ở quận 7, 2 người bị thương",  # a count, not a district
    "Doanh thu Q1/2024 tăng",
])
def test_numbers_after_a_district_are_not_always_districts(text: str) -> None:
    assert all(not t.isdigit() for t, _ in _fds(text))


@pytest.mark.parametrize(("text", "span", "district"), [
    ("Trường ĐH Y khoa Phạm Ngọc Thạch được phép tuyển sinh", "Trường ĐH Y khoa Phạm Ngọc Thạch", "Quận 10"),
    ("sinh viên Trường Đại học Nông Lâm TP.HCM", "Trường Đại học Nông Lâm TP.HCM", "Thủ Đức"),
    ("du khách đến chùa Giác Lâm dâng hương", "chùa Giác Lâm", "Tân Bình"),
    ("Bệnh viện Đa khoa Mỹ Đức vừa được công nhận", "Bệnh viện Đa khoa Mỹ Đức", "Tân Bình"),
    ("học sinh trường Lê Hồng Phong đạt giải", "trường Lê Hồng Phong", "Quận 5"),
    ("kẹt xe trước công viên Đầm Sen", "công viên Đầm Sen", "Quận 11"),
])
def test_landmarks_resolve_to_their_district(text: str, span: str, district: str) -> None:
    found = dict(_fds(text))
    assert found.get(span) == district, _fds(text)

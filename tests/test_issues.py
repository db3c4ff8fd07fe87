"""Tests of nlp.issues: grouping civic mentions into stable issues."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from langnghe.records import Issue, Mention, mention_id
from nlp.issues import (
    compatible,
    group_issues,
    issue_id_for,
    main_area,
    phrases,
    stopwords,
)
from nlp.text import fold

CITY = ZoneInfo("Asia/Ho_Chi_Minh")
SHARED = Path(__file__).resolve().parents[1].parent / "shared"

# real area ids: wards by their 2025 official code
BT = "fd:binh-thanh"
W_THANH_MY_TAY = "w:26956"  # phường Thạnh Mỹ Tây (Nguyễn Hữu Cảnh)
W_BINH_THANH = "w:26929"
Q7 = "fd:quan-7"
W_TAN_THUAN = "w:27478"
Q1 = "fd:quan-1"
W_BEN_THANH = "w:26743"
TAN_BINH = "fd:tan-binh"
THU_DUC = "fd:thu-duc"

# (source, title, text, areas, sentiment) — one flooding event in Bình Thạnh, 8 reports, 4 sources
FLOOD = [
    ("vnexpress.net", "Đường Nguyễn Hữu Cảnh ngập sâu sau mưa lớn, xe chết máy hàng loạt",
     "Cơn mưa lớn chiều 20/11 khiến đường Nguyễn Hữu Cảnh, phường Thạnh Mỹ Tây ngập sâu khoảng 40 cm, "
     "nhiều xe máy chết máy, người dân phải dắt bộ.", [W_THANH_MY_TAY, BT], "negative"),
    ("tuoitre.vn", "Mưa lớn, đường Nguyễn Hữu Cảnh lại ngập nước",
     "Chiều 20/11, mưa kéo dài hơn một giờ khiến tuyến đường Nguyễn Hữu Cảnh (Bình Thạnh) ngập nước, "
     "giao thông ùn ứ đến tối.", [BT], "negative"),
    ("thanhnien.vn", "Nguyễn Hữu Cảnh ngập nặng, người dân bì bõm lội nước về nhà",
     "Sau cơn mưa lớn, nhiều đoạn đường Nguyễn Hữu Cảnh ngập nặng, người dân bì bõm lội nước.",
     [W_THANH_MY_TAY, BT], "negative"),
    ("facebook:group/cu-dan-binh-thanh", "",
     "Đường Nguyễn Hữu Cảnh ngập nước tới bánh xe rồi mọi người ơi, né tuyến này ra nha, mưa lớn quá.",
     [BT], "negative"),
    ("vnexpress.net", "Vì sao đường Nguyễn Hữu Cảnh vẫn ngập sau mỗi trận mưa lớn?",
     "Dự án chống ngập đường Nguyễn Hữu Cảnh đã hoàn thành nhưng tuyến đường vẫn ngập nước sau mưa lớn, "
     "chuyên gia cho rằng hệ thống thoát nước quá tải.", [W_THANH_MY_TAY, BT], "neutral"),
    ("tuoitre.vn", "Ngập nước đường Nguyễn Hữu Cảnh, nhiều ô tô chết máy",
     "Mưa lớn chiều tối làm đường Nguyễn Hữu Cảnh ngập nước sâu, nhiều ô tô chết máy giữa đường.",
     [W_THANH_MY_TAY, BT], "negative"),
    ("facebook:group/cu-dan-binh-thanh", "",
     "Mưa lớn là đường Nguyễn Hữu Cảnh ngập nước, khổ quá, bao giờ mới hết ngập đây.", [BT], "negative"),
    ("thanhnien.vn", "Nước rút chậm trên đường Nguyễn Hữu Cảnh sau trận mưa lớn",
     "Hơn ba giờ sau cơn mưa lớn, nước ngập trên đường Nguyễn Hữu Cảnh vẫn rút chậm.",
     [W_THANH_MY_TAY, BT], "negative"),
]
GARBAGE = [
    ("tuoitre.vn", "Rác thải chất đống, bốc mùi hôi ở chân cầu Tân Thuận",
     "Người dân phường Tân Thuận phản ánh rác thải chất đống nhiều ngày ở chân cầu Tân Thuận, "
     "bốc mùi hôi nồng nặc.", [W_TAN_THUAN, Q7], "negative"),
    ("hotline-1022", "Phản ánh rác thải chân cầu Tân Thuận",
     "Bãi rác tự phát ở chân cầu Tân Thuận bốc mùi hôi, đề nghị phường thu gom rác thải.",
     [W_TAN_THUAN, Q7], "negative"),
    ("facebook:page/quan7", "",
     "Rác thải ở chân cầu Tân Thuận bốc mùi hôi quá, ai dọn giùm với, ngày nào đi qua cũng phải bịt mũi.",
     [W_TAN_THUAN, Q7], "negative"),
]
SINGLES = [
    ("vnexpress.net", "Ùn tắc kéo dài ở cửa ngõ sân bay Tân Sơn Nhất",
     "Đường Trường Sơn dẫn vào sân bay Tân Sơn Nhất kẹt xe hơn hai giờ chiều nay.",
     [TAN_BINH], "negative", "traffic", "construction"),
    ("tuoitre.vn", "Đề xuất giữ nguyên học phí năm học mới",
     "Sở Giáo dục và Đào tạo đề xuất giữ nguyên mức học phí các trường công lập năm học tới.",
     [], "neutral", "education", "education"),
    ("thanhnien.vn", "Nhiều học sinh ngộ độc sau bữa ăn bán trú",
     "Hàng chục học sinh một trường tiểu học ở phường Bến Thành nhập viện nghi ngộ độc thực phẩm.",
     [W_BEN_THANH, Q1], "negative", "food_safety", "food_safety"),
    ("vnexpress.net", "Ổ gà chi chít trên đường Xô Viết Nghệ Tĩnh",
     "Mặt đường Xô Viết Nghệ Tĩnh đoạn qua phường Bình Thạnh xuất hiện nhiều ổ gà, gây nguy hiểm.",
     [W_BINH_THANH, BT], "negative", "infrastructure", "construction"),
    ("tuoitre.vn", "Đường Kha Vạn Cân ngập sau mưa, xe cộ chật vật",
     "Mưa lớn khiến đường Kha Vạn Cân ở Thủ Đức ngập sâu, xe cộ chật vật di chuyển.",
     [THU_DUC], "negative", "flooding", "construction"),
    ("facebook:page/giaitri", "Ca sĩ X ra mắt MV mới",
     "MV mới của ca sĩ X đạt một triệu lượt xem sau một ngày.", [], "positive", "not_civic", "none"),
]


def _mention(i: int, source: str, title: str, text: str, areas: list[str], sentiment: str,
             topic: str, department: str, when: datetime, prefix: str = "d0") -> Mention:
    url = f"https://{source.replace(':', '.').replace('/', '.')}/{prefix}/bai-{i}"
    civic = topic != "not_civic"
    return Mention(
        id=mention_id(url), source=source, url=url, title=title, text=text, published_at=when,
        civic=civic, sentiment=sentiment, topic=topic, department=department,
        areas=(areas + ["hcmc"]) if civic or areas else [],
    )


def planted_mentions(day: datetime | None = None, *, prefix: str = "d0") -> list[Mention]:
    """The planted day: 8 flood reports (Bình Thạnh), 3 garbage reports (Quận 7), 6 singles."""
    day = day or datetime(2025, 11, 20, tzinfo=CITY)
    out: list[Mention] = []
    for k, (src, title, text, areas, sent) in enumerate(FLOOD):
        when = day.replace(hour=15) + timedelta(minutes=17 * k)
        out.append(_mention(k, src, title, text, areas, sent, "flooding", "construction", when, prefix))
    for k, (src, title, text, areas, sent) in enumerate(GARBAGE):
        when = day.replace(hour=8) + timedelta(minutes=40 * k)
        out.append(_mention(100 + k, src, title, text, areas, sent, "environment", "commune_pc", when,
                            prefix))
    for k, (src, title, text, areas, sent, topic, dept) in enumerate(SINGLES):
        when = day.replace(hour=10) + timedelta(minutes=30 * k)
        out.append(_mention(200 + k, src, title, text, areas, sent, topic, dept, when, prefix))
    return out


def _flood_ids(ms: list[Mention]) -> set[str]:
    return {m.id for m in ms if m.topic == "flooding" and "Nguyễn Hữu Cảnh" in m.content}


# --------------------------------------------------------------------------- unit pieces


def test_stopwords_loaded_and_civic_words_kept() -> None:
    stop = stopwords()
    assert len(stop) > 1500
    assert "những" in stop and "của" in stop
    assert "nước" not in stop and "nhà" not in stop and "cây" not in stop


def test_phrases_fold_and_keep_surface() -> None:
    got = dict(phrases("Ngập nước đường Nguyễn Hữu Cảnh của quận"))
    assert got["ngap nuoc"] == "Ngập nước"
    assert got["huu canh"] == "Hữu Cảnh"
    assert "cua" not in got  # stopword "của"
    assert not any(k.startswith("cua ") or k.endswith(" cua") for k in got)


def test_main_area_and_compatibility() -> None:
    m = Mention(id="a", source="s", url="u", title="t", text="x",
                published_at=datetime(2025, 1, 1, tzinfo=CITY), areas=[BT, W_THANH_MY_TAY, "hcmc"])
    assert main_area(m) == W_THANH_MY_TAY
    m.areas = [BT, "hcmc"]
    assert main_area(m) == BT
    m.areas = []
    assert main_area(m) == "hcmc"
    assert compatible(BT, [BT, "hcmc"], W_THANH_MY_TAY, [W_THANH_MY_TAY, BT, "hcmc"])
    assert not compatible(W_BINH_THANH, [W_BINH_THANH, BT], W_THANH_MY_TAY, [W_THANH_MY_TAY, BT])
    assert not compatible("hcmc", ["hcmc"], BT, [BT, "hcmc"])
    assert issue_id_for("flooding", BT, "x") == issue_id_for("flooding", BT, "x")
    assert issue_id_for("flooding", BT, "x") != issue_id_for("flooding", Q7, "x")


# --------------------------------------------------------------------------- planted events


def test_planted_flood_and_garbage_are_one_issue_each() -> None:
    ms = planted_mentions()
    res = group_issues(ms)
    flood = _flood_ids(ms)
    assert len({res.assignments[i] for i in flood}) == 1
    garbage = {m.id for m in ms if m.topic == "environment"}
    assert len({res.assignments[i] for i in garbage}) == 1
    # the not-civic item takes no part; every civic one is assigned
    assert len(res.assignments) == len(ms) - 1
    # singles stay alone; different topics never share an issue
    by_issue: dict[str, list[Mention]] = defaultdict(list)
    for m in ms:
        if m.id in res.assignments:
            by_issue[res.assignments[m.id]].append(m)
    assert len(by_issue) == 2 + 5
    for members in by_issue.values():
        assert len({m.topic for m in members}) == 1
    issues = {i.id: i for i in res.issues}
    fi = issues[res.assignments[next(iter(flood))]]
    assert fi.mention_count == 8 and fi.topic == "flooding" and fi.department == "construction"
    assert fi.area_ids[0] == W_THANH_MY_TAY and set(fi.area_ids) == {W_THANH_MY_TAY, BT, "hcmc"}
    assert "Nguyễn Hữu Cảnh" in fi.label
    assert any("Nguyễn Hữu Cảnh" in k or "Hữu Cảnh" in k for k in fi.keywords)
    assert any("ngập" in k.lower() for k in fi.keywords)
    assert not any(k.lower() in stopwords() for k in fi.keywords)
    first = min(m.published_at for m in ms if m.id in flood)
    seed = min((m for m in ms if m.id in flood), key=lambda m: (m.published_at, m.id))
    assert fi.first_seen == first and fi.id == issue_id_for("flooding", W_THANH_MY_TAY, seed.id)
    assert res.new_issue_ids == set(issues)


def test_same_input_same_ids_in_any_order() -> None:
    ms = planted_mentions()
    a = group_issues(ms)
    b = group_issues(list(reversed(planted_mentions())))
    assert a.assignments == b.assignments
    assert sorted(i.to_dict()["id"] for i in a.issues) == sorted(i.id for i in b.issues)


def test_reprocessing_with_existing_changes_nothing() -> None:
    ms = planted_mentions()
    first = group_issues(ms)
    for m in ms:
        m.issue_id = first.assignments.get(m.id)
    again = group_issues(ms, first.issues)
    assert again.assignments == first.assignments
    assert again.issues == [] and again.new_issue_ids == set()


def test_reprocessing_without_issue_ids_reuses_existing_ids() -> None:
    ms = planted_mentions()
    first = group_issues(ms)
    again = group_issues(planted_mentions(), first.issues)  # fresh copies, no issue_id on them
    assert again.assignments == first.assignments
    assert again.new_issue_ids == set()


def test_existing_issue_absorbs_next_day_reports() -> None:
    day0 = datetime(2025, 11, 20, tzinfo=CITY)
    ms = planted_mentions(day0)
    first = group_issues(ms)
    flood_issue = first.assignments[next(iter(_flood_ids(ms)))]
    old = {i.id: i for i in first.issues}[flood_issue]
    nxt = [
        _mention(900, "nld.com.vn", "Đường Nguyễn Hữu Cảnh tiếp tục ngập nước sau mưa lớn",
                 "Sáng 21/11, mưa lớn lại khiến đường Nguyễn Hữu Cảnh ngập nước, xe chết máy.",
                 [BT], "negative", "flooding", "construction", day0 + timedelta(days=1, hours=7)),
        _mention(901, "facebook:group/cu-dan-binh-thanh", "",
                 "Nguyễn Hữu Cảnh ngập nước nữa rồi, mưa lớn chút là ngập.",
                 [W_THANH_MY_TAY, BT], "negative", "flooding", "construction",
                 day0 + timedelta(days=1, hours=8)),
    ]
    # only the new day's mentions are given: the issue must be matched from its label + keywords
    res = group_issues(nxt, first.issues)
    assert {res.assignments[m.id] for m in nxt} == {flood_issue}
    assert res.new_issue_ids == set()
    (updated,) = res.issues
    assert updated.id == flood_issue and updated.mention_count == old.mention_count + 2
    assert updated.last_seen == nxt[1].published_at and updated.first_seen == old.first_seen
    assert updated.label == old.label


def test_different_wards_do_not_merge_but_district_report_joins_ward_issue() -> None:
    day = datetime(2025, 11, 20, 9, tzinfo=CITY)
    text = "Cây xanh bật gốc đè trúng xe máy trên đường {}"
    a = _mention(1, "a.vn", "Cây xanh bật gốc đè xe máy", text.format("Nguyễn Hữu Cảnh"),
                 [W_THANH_MY_TAY, BT], "negative", "infrastructure", "construction", day)
    b = _mention(2, "b.vn", "Cây xanh bật gốc đè xe máy", text.format("Xô Viết Nghệ Tĩnh"),
                 [W_BINH_THANH, BT], "negative", "infrastructure", "construction", day + timedelta(hours=1))
    c = _mention(3, "c.vn", "Cây xanh bật gốc đè xe máy ở Bình Thạnh", text.format("Nguyễn Hữu Cảnh"),
                 [BT], "negative", "infrastructure", "construction", day + timedelta(hours=2))
    res = group_issues([a, b, c])
    assert res.assignments[a.id] != res.assignments[b.id]
    assert res.assignments[c.id] == res.assignments[a.id]


def test_moved_mention_decrements_old_issue() -> None:
    ms = planted_mentions()
    first = group_issues(ms)
    for m in ms:
        m.issue_id = first.assignments.get(m.id)
    single = next(m for m in ms if m.topic == "traffic")
    old_issue = single.issue_id
    assert old_issue is not None
    single.topic = "infrastructure"  # re-classified: it leaves its traffic issue
    res = group_issues(ms, first.issues)
    assert res.assignments[single.id] != old_issue
    changed = {i.id: i for i in res.issues}
    assert changed[old_issue].mention_count == 0


def test_bad_threshold() -> None:
    with pytest.raises(ValueError):
        group_issues([], threshold=0)


# --------------------------------------------------------------------------- real labelled data


def _civic_items() -> list[dict]:
    rows: list[dict] = []
    for name in ("train.jsonl", "dev.jsonl"):
        path = SHARED / "data" / "civic" / name
        if path.exists():
            rows += [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    return [r for r in rows if r.get("civic") and r.get("issue")]


def _areas_of(row: dict) -> list[str]:
    """Former-district area ids from the annotated locations (then the city)."""
    out: list[str] = []
    for loc in row.get("locations") or []:
        name = loc.get("old_district")
        if name:
            area = "fd:" + "-".join(fold(name).split())
            if area not in out:
                out.append(area)
    return out + ["hcmc"]


def cluster_scores(items: list[dict], threshold: float | None = None) -> dict[str, float]:
    """Purity, inverse purity and pair recall of group_issues against the `issue` phrases."""
    base = datetime(2025, 11, 20, 8, tzinfo=CITY)
    ms = []
    for k, r in enumerate(items):
        title, _, body = r["text"].partition("\n")
        ms.append(Mention(id=r["id"], source=r.get("source", "x"), url=r["id"], title=title, text=body,
                          published_at=base + timedelta(minutes=k), civic=True, topic=r["topic"],
                          department=r.get("department"), areas=_areas_of(r)))
    res = group_issues(ms) if threshold is None else group_issues(ms, threshold=threshold)
    gold = {r["id"]: (r["topic"], r["issue"].strip().lower()) for r in items}
    clusters: dict[str, list[str]] = defaultdict(list)
    for mid, iid in res.assignments.items():
        clusters[iid].append(mid)
    classes: dict[tuple[str, str], list[str]] = defaultdict(list)
    for mid, g in gold.items():
        classes[g].append(mid)
    n = len(gold)
    purity = sum(Counter(gold[m] for m in ms_).most_common(1)[0][1] for ms_ in clusters.values()) / n
    inverse = sum(Counter(res.assignments[m] for m in ms_).most_common(1)[0][1]
                  for ms_ in classes.values()) / n
    pairs = [(a, b) for ms_ in classes.values() for i, a in enumerate(ms_) for b in ms_[i + 1:]]
    together = sum(1 for a, b in pairs if res.assignments[a] == res.assignments[b])
    return {"items": n, "clusters": len(clusters), "gold_issues": len(classes), "purity": purity,
            "inverse_purity": inverse, "gold_pairs": len(pairs),
            "pair_recall": together / len(pairs) if pairs else 1.0}


def test_cluster_purity_on_labelled_civic_data() -> None:
    items = _civic_items()
    if not items:
        pytest.skip("../shared/data/civic is absent: no labelled issue phrases to measure purity")
    scores = cluster_scores(items)
    print("civic issue clustering:", scores)
    # the texts are 2006–2018 news about many different matters: almost every phrase is unique,
    # so purity must stay high (few false merges) and the shared-phrase pairs should mostly join
    assert scores["purity"] >= 0.9
    assert scores["pair_recall"] >= 0.5


def test_issue_roundtrip() -> None:
    res = group_issues(planted_mentions())
    for issue in res.issues:
        assert Issue.from_dict(issue.to_dict()) == issue

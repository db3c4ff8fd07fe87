/* Lắng Nghe dashboard: refreshes the top-10 and the search through the JSON API, without reloading.
   Everything is built with textContent/attributes (no HTML from data), so nothing needs escaping
   except search highlights, whose only markup (<mark>) is rebuilt from escaped text. */
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("ln-data").textContent);
  var ui = data.ui, labels = data.labels, parts = data.parts;
  // the counted word: "1 mention", "3 mentions" (English has a singular; Vietnamese words do not change)
  function unit(key, n) { return n === 1 && ui[key + "_one"] ? ui[key + "_one"] : ui[key]; }
  var SVG = "http://www.w3.org/2000/svg";
  var form = document.getElementById("controls");
  var searchForm = document.getElementById("search-form");
  var state = { page: 1, pageSize: 20, total: 0 };

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }
  function svgEl(tag, attrs) {
    var node = document.createElementNS(SVG, tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    return node;
  }
  function safeUrl(url) { return /^https?:\/\//i.test(url || "") ? url : null; }
  function fmtDate(iso, withTime) {
    /* dd/mm/yyyy [hh:mm] in city time, as the server renders it */
    var opts = { timeZone: "Asia/Ho_Chi_Minh", day: "2-digit", month: "2-digit", year: "numeric",
                 hour: "2-digit", minute: "2-digit", hourCycle: "h23" };
    var p = {};
    new Intl.DateTimeFormat("en-GB", opts).formatToParts(new Date(iso)).forEach(function (x) { p[x.type] = x.value; });
    var day = p.day + "/" + p.month + "/" + p.year;
    return withTime ? day + " " + p.hour + ":" + p.minute : day;
  }
  function link(url, text) {
    var href = safeUrl(url);
    if (!href) return document.createTextNode(text || "");
    return el("a", { href: href, rel: "noopener noreferrer nofollow", target: "_blank" }, text || url);
  }
  function showError(message) {
    var box = document.getElementById("error");
    box.textContent = message ? ui.error + ": " + message : "";
    box.hidden = !message;
  }
  async function getJSON(url) {
    var res = await fetch(url, { headers: { Accept: "application/json" } });
    var body = await res.json().catch(function () { return {}; });
    if (!res.ok) throw new Error(body.message || body.detail || res.statusText);
    return body;
  }
  function controls() {
    var fd = new FormData(form);
    return { area: fd.get("area") || "hcmc", period: fd.get("period") || "day", date: fd.get("date") || "" };
  }
  function bar(cls, label, segments) {
    var svg = svgEl("svg", { class: "bar " + cls, role: "img", "aria-label": label, width: "100%", height: "8" });
    var x = 0;
    segments.forEach(function (s) {
      var rect = svgEl("rect", { class: s.cls, x: x.toFixed(3) + "%", y: "0", width: s.w.toFixed(3) + "%", height: "8" });
      var title = svgEl("title"); title.textContent = s.title; rect.appendChild(title);
      svg.appendChild(rect); x += s.w;
    });
    return svg;
  }
  function legend(items) {
    var ul = el("ul", { class: "legend" });
    items.forEach(function (it) {
      var li = el("li"); li.appendChild(el("span", { class: "swatch " + it.cls, "aria-hidden": "true" }));
      li.appendChild(document.createTextNode(it.text)); ul.appendChild(li);
    });
    return ul;
  }
  function renderIssue(it) {
    var li = el("li", { class: "issue" });
    li.appendChild(el("div", { class: "rank", "aria-hidden": "true" }, it.rank));
    var body = el("div", { class: "body" });
    var h3 = el("h3", { class: "label" });
    h3.appendChild(el("a", { href: "/issues/" + encodeURIComponent(it.issue_id) + "?lang=" + data.lang }, it.label));
    body.appendChild(h3);
    var tags = el("p", { class: "tags" });
    tags.appendChild(el("span", { class: "tag topic", title: ui.topic }, labels.topic[it.topic] || it.topic || ""));
    if (it.department) tags.appendChild(el("span", { class: "tag dept", title: ui.department }, labels.department[it.department] || it.department));
    body.appendChild(tags);
    var names = Object.keys(it.score_parts);
    var partText = names.map(function (n) { return (parts[n] || n) + ": " + it.score_parts[n].toFixed(2); });
    var counts = el("p", { class: "counts" });
    var score = el("span", { class: "score", title: partText.join("\n") }, ui.score + " ");
    score.appendChild(el("strong", {}, it.score.toFixed(2)));
    counts.appendChild(score);
    counts.appendChild(document.createTextNode(" · " + it.mention_count + " " + unit("mentions", it.mention_count) +
      " · " + it.source_count + " " + unit("sources", it.source_count)));
    body.appendChild(counts);
    var sum = names.reduce(function (a, n) { return a + Math.abs(it.score_parts[n]); }, 0);
    if (sum > 0) {
      body.appendChild(bar("parts", ui.score_parts + ": " + partText.join(", "), names.map(function (n, i) {
        return { cls: "part-" + (i % 6), w: Math.abs(it.score_parts[n]) / sum * 100, title: partText[i] };
      })));
      body.appendChild(legend(names.map(function (n, i) { return { cls: "part-" + (i % 6), text: partText[i] }; })));
    }
    var s = it.sentiment, total = s.negative + s.neutral + s.positive;
    if (total > 0) {
      var segs = [["neg", "negative"], ["neu", "neutral"], ["pos", "positive"]].map(function (p) {
        return { cls: p[0], w: s[p[1]] / total * 100, title: labels.sentiment[p[1]] + " " + s[p[1]] };
      });
      body.appendChild(bar("sentiment", ui.sentiment + ": " + segs.map(function (g) { return g.title; }).join(", "), segs));
      body.appendChild(legend(segs.map(function (g) { return { cls: g.cls, text: g.title }; })));
    }
    if (it.keywords && it.keywords.length) {
      var kw = el("p", { class: "keywords" });
      kw.appendChild(el("span", { class: "muted" }, ui.keywords + ": "));
      kw.appendChild(document.createTextNode(it.keywords.join(", ")));
      body.appendChild(kw);
    }
    if (it.evidence && it.evidence.length) {
      var det = el("details", { class: "evidence" });
      det.appendChild(el("summary", {}, ui.evidence + " (" + it.evidence.length + ")"));
      var ul = el("ul");
      it.evidence.forEach(function (ev) {
        var item = el("li");
        item.appendChild(link(ev.url, ev.title || ev.url));
        item.appendChild(el("span", { class: "muted" }, " — " + ev.source + ", " + fmtDate(ev.published_at, false)));
        ul.appendChild(item);
      });
      det.appendChild(ul); body.appendChild(det);
    }
    li.appendChild(body);
    return li;
  }
  async function loadTop() {
    var c = controls();
    var params = new URLSearchParams({ area: c.area, period: c.period, limit: "10" });
    if (c.date) params.set("date", c.date);
    var status = document.getElementById("top-status");
    status.textContent = ui.loading;
    try {
      var top = await getJSON("/api/v1/issues/top?" + params.toString());
      showError("");
      var list = document.getElementById("top-list");
      list.replaceChildren.apply(list, top.issues.map(renderIssue));
      document.getElementById("top-empty").hidden = top.issues.length > 0;
      document.getElementById("top-context").textContent =
        "— " + (top.area.full_name || top.area.name) + ", " + ui["period_" + top.period] + " " + top.period_key;
      var page = new URLSearchParams({ lang: data.lang, area: c.area, period: c.period });
      if (c.date) page.set("date", c.date);
      history.replaceState(null, "", "?" + page.toString());
      page.set("lang", data.lang === "en" ? "vi" : "en");
      document.getElementById("lang-link").setAttribute("href", "?" + page.toString());
      searchForm.elements.area.value = c.area;
      searchForm.elements.period.value = c.period;
    } catch (err) {
      showError(err.message);
    } finally {
      status.textContent = "";
    }
  }
  var decoder = document.createElement("textarea");
  function decode(text) { decoder.innerHTML = text; return decoder.value; }  /* entities only: RCDATA */
  function highlight(snippet) {
    var frag = document.createDocumentFragment();
    String(snippet).split(/(<mark>[\s\S]*?<\/mark>)/).forEach(function (part) {
      var m = /^<mark>([\s\S]*)<\/mark>$/.exec(part);
      frag.appendChild(m ? el("mark", {}, decode(m[1])) : document.createTextNode(decode(part)));
    });
    return frag;
  }
  function renderMention(m) {
    var li = el("li");
    var h = el("h3"); h.appendChild(link(m.url, m.title || m.url)); li.appendChild(h);
    var p = el("p", { class: "snippet" });
    if (m.highlight) p.appendChild(highlight(m.highlight)); else p.textContent = m.snippet;
    li.appendChild(p);
    var meta = [m.source, fmtDate(m.published_at, true)];
    if (m.topic) meta.push(labels.topic[m.topic] || m.topic);
    if (m.department) meta.push(labels.department[m.department] || m.department);
    if (m.sentiment) meta.push(labels.sentiment[m.sentiment] || m.sentiment);
    var line = el("p", { class: "muted" }, meta.join(" · "));
    if (m.department_score !== null && m.department_score !== undefined && m.department_score < 0.5) {
      line.appendChild(document.createTextNode(" "));
      line.appendChild(el("span", { class: "badge check",
        title: ui.check_routing_hint.replace("{score}", Math.round(m.department_score * 100) + "%") }, ui.check_routing));
    }
    li.appendChild(line);
    return li;
  }
  async function search(page) {
    var q = searchForm.elements.q.value.trim();
    var params = new URLSearchParams({ page: String(page), page_size: String(state.pageSize) });
    if (q) params.set("q", q);
    var area = controls().area;
    if (area && area !== "hcmc") params.set("area", area);
    var status = document.getElementById("search-status");
    status.textContent = ui.loading;
    var exportParams = new URLSearchParams({ q: q });
    if (area && area !== "hcmc") exportParams.set("area", area);
    ["csv", "json"].forEach(function (fmt) {
      exportParams.set("format", fmt);
      document.getElementById("export-" + fmt).setAttribute("href", "/api/v1/mentions/export?" + exportParams.toString());
    });
    try {
      var res = await getJSON("/api/v1/mentions/search?" + params.toString());
      showError("");
      state.page = res.page; state.total = res.total;
      var list = document.getElementById("search-results");
      list.replaceChildren.apply(list, res.items.map(renderMention));
      document.getElementById("search-empty").hidden = res.items.length > 0;
      status.textContent = res.total + " " + ui.results;
      var pages = Math.max(1, Math.ceil(res.total / res.page_size));
      document.getElementById("search-pager").hidden = pages <= 1;
      document.getElementById("page-info").textContent = ui.page + " " + res.page + " / " + pages;
      document.getElementById("prev").disabled = res.page <= 1;
      document.getElementById("next").disabled = res.page >= pages;
    } catch (err) {
      status.textContent = "";
      showError(err.message);
    }
  }
  form.addEventListener("submit", function (e) { e.preventDefault(); loadTop(); });
  form.addEventListener("change", function () { loadTop(); });
  searchForm.addEventListener("submit", function (e) { e.preventDefault(); search(1); });
  document.getElementById("prev").addEventListener("click", function () { search(state.page - 1); });
  document.getElementById("next").addEventListener("click", function () { search(state.page + 1); });
  if (searchForm.elements.q.value.trim()) search(1);
})();

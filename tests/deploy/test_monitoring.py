"""The monitoring files in deploy/: Prometheus config, alert rules and the Grafana dashboard,
and the PromQL that docs/monitoring.md gives operators.

Static tests read the files and check every PromQL expression against ``services.metrics.SERIES``
(metric names, labels, the stream filter) and the dashboard's layout. ``promtool`` checks the config
and rules. The last tests start a real fervid service and the real ``prometheus`` binary scraping
it, and require every dashboard query, alert expression and documented query to evaluate, with data
where the series must exist.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml

from fervid.services.metrics import SERIES
from tests.conftest import REPO, SAMPLE_CLIP
from tests.services.service_helpers import free_port, wait_for

PROMETHEUS_DIR = REPO / "deploy" / "prometheus"
PROMETHEUS_YML = PROMETHEUS_DIR / "prometheus.yml"
ALERTS_YML = PROMETHEUS_DIR / "alerts.yml"
DASHBOARD = REPO / "deploy" / "grafana" / "fervid-dashboard.json"
FERVID_YAML = REPO / "deploy" / "fervid.yaml"
MONITORING_MD = REPO / "docs" / "monitoring.md"
TRACKING_SERIES = ("fervid_full_scans_total", "fervid_region_scans_total", "fervid_boxes_carried_total",
                   "fervid_scanned_pixels_total", "fervid_tracks_alive", "fervid_tracks_started_total")

PROMETHEUS = shutil.which("prometheus")
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool is not on PATH (apt-get install prometheus)")
needs_prometheus = pytest.mark.skipif(PROMETHEUS is None,
                                      reason="prometheus is not on PATH (apt-get install prometheus)")

TARGET_LABELS = {"job", "instance"}
"""Labels Prometheus adds to every scraped series."""
PROMETHEUS_SERIES = {"up": ()}
"""Series Prometheus itself writes for each target (FervidMetricsDown reads ``up``)."""
GRAFANA_VARIABLES = {"$stream": ".*", "$__rate_interval": "30s", "$__interval": "30s", "$__range": "5m"}
"""What the live test substitutes for Grafana's variables (All streams; windows of 30 scrapes)."""

EVENT_SERIES = {
    "fervid_frames_dropped_total": "a drop series is created by the first dropped frame; at 10 fps per stream "
                                   "whether any frame is dropped depends on the machine's load",
    "fervid_actor_restarts_total": "created by the first actor restart; nothing is killed here "
                                   "(test_service_end_to_end covers restarts)",
    "fervid_reconnects_total": "created by the first reconnect of a lost source; the sample clip never gets lost",
}
"""Series that exist only after an event: their queries must succeed, but may return no data."""
HISTORY_REASON = "reads data from 10 minutes ago (offset 10m), older than the test's Prometheus"

# ---------------------------------------------------------------------------------------------
# A small PromQL scanner: enough to find metric names, matchers, grouping labels and the
# operands of top-level comparisons in the expressions this repository ships.

_TOKEN = re.compile(r"""
    (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
  | (?P<range>\[[^\]]*\])
  | (?P<duration>\d+(?:ms|[smhdwy])(?![A-Za-z0-9_]))
  | (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)
  | (?P<op>=~|!~|!=|==|<=|>=|[-+*/%^<>=(){},])
  | (?P<space>\s+)
""", re.VERBOSE)
AGGREGATIONS = {"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk",
                "topk", "quantile", "limitk", "limit_ratio"}
GROUPING = {"by", "without", "on", "ignoring", "group_left", "group_right"}
KEYWORDS = {"offset", "bool", "and", "or", "unless", "inf", "nan", "atan2"}
COMPARISONS = {"==", "!=", ">", "<", ">=", "<="}


def tokenize(expr: str) -> list[tuple[str, str, int, int]]:
    """(kind, text, start, end) for every token but whitespace; fails on anything unexpected."""
    tokens, position = [], 0
    while position < len(expr):
        match = _TOKEN.match(expr, position)
        assert match, f"cannot scan PromQL at {expr[position:position + 20]!r} in {expr!r}"
        if match.lastgroup != "space":
            tokens.append((match.lastgroup, match.group(), match.start(), match.end()))
        position = match.end()
    return tokens


def _closing(tokens, index: int) -> int:
    """Index of the bracket closing the one at ``index``."""
    pairs = {"(": ")", "{": "}"}
    opening, depth = tokens[index][1], 0
    for j in range(index, len(tokens)):
        if tokens[j][1] == opening:
            depth += 1
        elif tokens[j][1] == pairs[opening]:
            depth -= 1
            if depth == 0:
                return j
    raise AssertionError(f"unbalanced {opening!r}")


def analyze(expr: str) -> dict:
    """Selectors ``(metric, {label: (op, value)})`` and groupings ``(labels, metrics inside)``."""
    tokens = tokenize(expr)
    selectors: list[tuple[int, str, dict]] = []  # (token index, metric, matchers)
    groupings: list[tuple[tuple[str, ...], tuple[int, int] | None]] = []  # labels, token span they apply to
    skip_until = -1
    for i, (kind, text, _, _) in enumerate(tokens):
        if i <= skip_until or kind != "ident":
            continue
        following = tokens[i + 1][1] if i + 1 < len(tokens) else None
        if text in GROUPING:
            assert following == "(", f"{text} without a label list in {expr!r}"
            end = _closing(tokens, i + 1)
            labels = tuple(t[1] for t in tokens[i + 2:end] if t[0] == "ident")
            groupings.append((labels, _aggregation_span(tokens, i)))
            skip_until = end
        elif text in AGGREGATIONS and following in ("(", "by", "without"):
            continue
        elif following == "(" or text in KEYWORDS:
            continue  # a function call or a keyword
        else:
            matchers = {}
            if following == "{":
                end = _closing(tokens, i + 1)
                inner = [t for t in tokens[i + 2:end] if t[1] != ","]
                for j in range(0, len(inner), 3):
                    label, op, value = inner[j:j + 3]
                    assert label[0] == "ident" and op[1] in ("=", "!=", "=~", "!~") and value[0] == "string", \
                        f"unexpected matcher in {expr!r}"
                    matchers[label[1]] = (op[1], value[1][1:-1])
                skip_until = end
            selectors.append((i, text, matchers))
    resolved = []
    for labels, span in groupings:
        inside = [name for index, name, _ in selectors if span is None or span[0] < index < span[1]]
        resolved.append((labels, inside))
    return {"selectors": [(name, matchers) for _, name, matchers in selectors], "groupings": resolved}


def _aggregation_span(tokens, grouping_index: int) -> tuple[int, int] | None:
    """The argument of the aggregation a ``by``/``without`` belongs to (None for on/ignoring: everything)."""
    if tokens[grouping_index][1] not in ("by", "without"):
        return None
    before = tokens[grouping_index - 1]
    if before[0] == "ident" and before[1] in AGGREGATIONS:  # sum by (x) (expr)
        start = _closing(tokens, grouping_index + 1) + 1
        return start, _closing(tokens, start)
    assert before[1] == ")", "a grouping clause follows an aggregation"  # sum (expr) by (x)
    depth = 0
    for j in range(grouping_index - 1, -1, -1):
        depth += {")": 1, "(": -1}.get(tokens[j][1], 0)
        if depth == 0:
            return j, grouping_index - 1
    raise AssertionError("unbalanced parentheses")


def operands(expr: str) -> list[str]:
    """The operands of the top-level comparisons and set operators (numbers left out)."""
    tokens = tokenize(expr)
    parts, start, depth = [], 0, 0
    for kind, text, begin, end in tokens:
        if text in ("(", "{"):
            depth += 1
        elif text in (")", "}"):
            depth -= 1
        elif depth == 0 and (text in COMPARISONS or (kind == "ident" and text in ("and", "or", "unless"))):
            parts.append(expr[start:begin])
            start = end
        elif depth == 0 and kind == "ident" and text == "bool":
            start = end
    parts.append(expr[start:])
    return [part.strip() for part in parts if not re.fullmatch(r"\s*[-+]?[\d.]+\s*", part)]


def series_labels(metric: str) -> set[str] | None:
    """Labels a metric name can carry in Prometheus, or None when fervid does not export it."""
    if metric in PROMETHEUS_SERIES:
        return set(PROMETHEUS_SERIES[metric]) | TARGET_LABELS
    if metric in SERIES:
        return set(SERIES[metric].labels) | TARGET_LABELS
    for suffix in ("_bucket", "_sum", "_count"):
        base = metric.removesuffix(suffix)
        if base != metric and base in SERIES and SERIES[base].kind == "histogram":
            return set(SERIES[base].labels) | TARGET_LABELS | ({"le"} if suffix == "_bucket" else set())
    return None


def check_expression(expr: str, where: str) -> list[str]:
    """Problems with one expression: unknown metrics, labels a series does not have."""
    problems = []
    found = analyze(expr)
    if not found["selectors"]:
        problems.append(f"{where}: no metric in {expr!r}")
    for metric, matchers in found["selectors"]:
        labels = series_labels(metric)
        if labels is None:
            problems.append(f"{where}: {metric} is not exported by fervid (services.metrics.SERIES)")
            continue
        for label in matchers:
            if label not in labels:
                problems.append(f"{where}: {metric} has no label {label!r}")
    for grouping, metrics in found["groupings"]:
        for metric in metrics:
            labels = series_labels(metric) or set()
            for label in grouping:
                if label not in labels:
                    problems.append(f"{where}: grouping by {label!r}, which {metric} does not have")
    return problems


# ---------------------------------------------------------------------------------------------
# The files.

def load_yaml(path: Path):
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def alert_rules() -> list[dict]:
    groups = load_yaml(ALERTS_YML)["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text(encoding="utf-8"))


def dashboard_queries() -> list[tuple[str, str]]:
    """(panel title, expr) for every target of every panel (rows included)."""
    queries = []

    def visit(panels):
        for panel in panels:
            for target in panel.get("targets", ()):
                queries.append((panel["title"], target["expr"]))
            visit(panel.get("panels", ()))

    visit(dashboard()["panels"])
    return queries


def doc_queries() -> list[tuple[str, str]]:
    """(comment above it, expr) for every query in the ```promql blocks of docs/monitoring.md."""
    queries = []
    for block in re.findall(r"^```promql\n(.*?)^```", MONITORING_MD.read_text(encoding="utf-8"), re.M | re.S):
        comment = ""
        for line in block.splitlines():
            if line.startswith("#"):
                comment = line.lstrip("# ")
            elif line.strip():
                queries.append((comment, line.strip()))
    return queries


def scrape_job(config: dict, name: str) -> dict:
    return next(job for job in config["scrape_configs"] if job["job_name"] == name)


def test_files_parse_and_have_the_expected_shape():
    config = load_yaml(PROMETHEUS_YML)
    assert config["rule_files"] == ["alerts.yml"]
    fervid = scrape_job(config, "fervid")
    assert fervid["scrape_interval"] == "5s"
    assert fervid["static_configs"] == [{"targets": ["127.0.0.1:9108"]}]
    ray_job = scrape_job(config, "ray")
    assert ray_job["file_sd_configs"] == [{"files": ["/tmp/ray/prom_metrics_service_discovery.json"]}]

    groups = load_yaml(ALERTS_YML)["groups"]
    assert [group["name"] for group in groups] == ["fervid"]
    rules = {rule["alert"]: rule for rule in alert_rules()}
    assert {"FervidStreamDown", "FervidFramesDropping", "FervidLatencyP99High", "FervidNoFaces",
            "FervidActorRestarts"} <= set(rules)
    assert rules["FervidStreamDown"]["for"] == "1m"
    assert "0.15" in rules["FervidLatencyP99High"]["expr"]
    for name, rule in rules.items():
        assert rule["labels"]["severity"] in ("critical", "warning", "info"), name
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], name

    document = dashboard()
    assert 36 <= document["schemaVersion"] <= 41
    assert all(panel["type"] in ("timeseries", "row") for panel in document["panels"])
    assert all(not panel.get("targets") for panel in document["panels"] if panel["type"] == "row")
    assert len(dashboard_queries()) >= 10
    assert len(doc_queries()) >= 5


def test_dashboard_layout_ids_are_unique_and_panels_do_not_overlap():
    """Grafana keys panels by id and lays them out on a 24-column grid by gridPos."""
    top = dashboard()["panels"]
    every = top + [child for panel in top for child in panel.get("panels", ())]
    ids = [panel["id"] for panel in every]
    assert len(ids) == len(set(ids)), f"duplicate panel ids: {sorted(i for i in ids if ids.count(i) > 1)}"
    boxes = []
    for panel in top:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["y"] >= 0 and grid["w"] > 0 and grid["h"] > 0, panel["title"]
        assert grid["x"] + grid["w"] <= 24, f"{panel['title']} is wider than the grid"
        for title, other in boxes:
            apart = (grid["x"] >= other["x"] + other["w"] or other["x"] >= grid["x"] + grid["w"]
                     or grid["y"] >= other["y"] + other["h"] or other["y"] >= grid["y"] + grid["h"])
            assert apart, f"{panel['title']!r} overlaps {title!r}"
        boxes.append((panel["title"], grid))


def test_tracking_row_plots_every_tracking_series():
    top = dashboard()["panels"]
    (start,) = [i for i, panel in enumerate(top) if panel["type"] == "row" and panel["title"] == "Tracking"]
    after = top[start + 1:]
    end = next((i for i, panel in enumerate(after) if panel["type"] == "row"), len(after))
    plotted = {metric for panel in after[:end] + top[start].get("panels", []) for target in panel["targets"]
               for metric, _ in analyze(target["expr"])["selectors"]}
    assert set(TRACKING_SERIES) <= plotted, f"the Tracking row lacks {sorted(set(TRACKING_SERIES) - plotted)}"
    documented = {metric for _, expr in doc_queries() for metric, _ in analyze(expr)["selectors"]}
    assert set(TRACKING_SERIES) <= documented, "docs/monitoring.md, Scanning less"


def test_fervid_scrape_target_matches_the_shipped_service_config():
    service = load_yaml(FERVID_YAML)["metrics"]
    (target,) = scrape_job(load_yaml(PROMETHEUS_YML), "fervid")["static_configs"][0]["targets"]
    host, port = target.rsplit(":", 1)
    assert (host, int(port)) == (service["host"], service["port"])
    from fervid.services.config import MetricsConfig

    assert int(port) == MetricsConfig().port


def test_every_query_uses_only_exported_series_and_their_labels():
    problems = []
    for title, expr in dashboard_queries():
        problems += check_expression(expr, f"dashboard panel {title!r}")
    for rule in alert_rules():
        problems += check_expression(rule["expr"], f"alert {rule['alert']}")
    for comment, expr in doc_queries():
        problems += check_expression(expr, f"docs/monitoring.md query {comment!r}")
    assert not problems, "\n".join(problems)


def test_the_checker_catches_unknown_series_and_labels():
    """The static check above is only worth something if it fails on mistakes."""
    assert check_expression('rate(fervid_frames_processed_total{stream=~".*"}[5m])', "ok") == []
    assert check_expression("histogram_quantile(0.9, sum by (stream, le) (rate(fervid_latency_seconds_bucket[5m])))",
                            "ok") == []
    assert check_expression("rate(fervid_frames_procesed_total[5m])", "typo")
    assert check_expression('fervid_actor_restarts_total{stream="a"}', "no stream label")
    assert check_expression("sum by (stream) (rate(fervid_actor_restarts_total[5m]))", "grouping")
    assert check_expression("sum(rate(fervid_faces_total[5m])) by (emotion)", "grouping after")
    assert check_expression("sum by (le) (rate(fervid_latency_seconds_sum[5m]))", "le on _sum")
    assert operands("sum by (stream) (rate(a[5m])) == 0 and sum by (stream) (rate(a[1d] offset 10m)) > 0") == [
        "sum by (stream) (rate(a[5m]))", "sum by (stream) (rate(a[1d] offset 10m))"]


def test_dashboard_filters_every_stream_series_by_the_stream_variable():
    problems = []
    for title, expr in dashboard_queries():
        for metric, matchers in analyze(expr)["selectors"]:
            if "stream" in (series_labels(metric) or ()) and matchers.get("stream") != ("=~", "$stream"):
                problems.append(f"panel {title!r}: {metric} is not filtered by stream=~\"$stream\"")
    assert not problems, "\n".join(problems)


def test_dashboard_variables():
    variables = {v["name"]: v for v in dashboard()["templating"]["list"]}
    stream = variables["stream"]
    query = stream["query"]["query"] if isinstance(stream["query"], dict) else stream["query"]
    assert query == "label_values(fervid_frames_captured_total, stream)"
    assert stream["type"] == "query" and stream["multi"] is True and stream["includeAll"] is True
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"

    def datasources(node):
        if isinstance(node, dict):
            if isinstance(node.get("datasource"), dict):
                yield node["datasource"]
            for value in node.values():
                yield from datasources(value)
        elif isinstance(node, list):
            for value in node:
                yield from datasources(value)

    used = list(datasources(dashboard()["panels"])) + [stream["datasource"]]
    assert used and all(ds == {"type": "prometheus", "uid": "${datasource}"} for ds in used)


def test_alert_annotations_use_labels_the_expression_keeps():
    for rule in alert_rules():
        metrics = [metric for metric, _ in analyze(rule["expr"])["selectors"]]
        text = " ".join(rule["annotations"].values())
        used = set(re.findall(r"\$labels\.([A-Za-z_][A-Za-z0-9_]*)", text))
        assert used, f"{rule['alert']}: the annotations name no series"
        for label in used:
            for metric in metrics:
                assert label in series_labels(metric), f"{rule['alert']}: {metric} has no label {label!r}"


# ---------------------------------------------------------------------------------------------
# promtool.

@needs_promtool
def test_promtool_accepts_the_config_and_rules():
    for args in (["check", "config", str(PROMETHEUS_YML)], ["check", "rules", str(ALERTS_YML)]):
        result = subprocess.run([PROMTOOL, *args], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stdout + result.stderr


# ---------------------------------------------------------------------------------------------
# The real thing: fervid scraped by a real Prometheus.

STREAMS = ("mon0", "mon1")


@pytest.fixture(scope="module")
def service(ray_session):
    from fervid.services.config import parse_config
    from fervid.services.service import start_service, stop_service

    ports = {"zmq": free_port(), "metrics": free_port()}
    config = parse_config({
        # Paced at 10 fps each: light on a small machine, fast enough for every rate to move.
        "streams": [{"name": name, "source": str(SAMPLE_CLIP), "loop": True, "fps": 10} for name in STREAMS],
        "publisher": {"endpoint": f"tcp://127.0.0.1:{ports['zmq']}"},
        "metrics": {"port": ports["metrics"]},
        # Region scans every second frame, so that carried boxes (none at the default of 1) have data too.
        "tracking": {"region_scan_every": 2},
    })
    controller = start_service(config)
    info = {"controller": controller, "metrics_port": ports["metrics"]}

    def streams() -> list[dict]:
        return ray_session.get(controller.status.remote(), timeout=30)["streams"]

    try:
        wait_for(lambda: all(s.get("frames_processed", 0) > 5 for s in streams()), 120,
                 what="every stream to process frames")
        yield info
    finally:
        stop_service(controller)


def api(base: str, path: str, **params) -> dict:
    url = f"{base}{path}" + (f"?{urllib.parse.urlencode(params, doseq=True)}" if params else "")
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read().decode())


@pytest.fixture(scope="module")
def prometheus(request, tmp_path_factory):
    """The real prometheus binary with a copy of the shipped config aimed at the test service."""
    if PROMETHEUS is None:
        pytest.skip("prometheus is not on PATH (apt-get install prometheus)")
    service = request.getfixturevalue("service")
    folder = tmp_path_factory.mktemp("prometheus")
    config = load_yaml(PROMETHEUS_YML)
    config["global"].update(scrape_interval="1s", evaluation_interval="1s")
    fervid = scrape_job(config, "fervid")
    fervid["scrape_interval"] = "1s"
    fervid["static_configs"] = [{"targets": [f"127.0.0.1:{service['metrics_port']}"]}]
    # The rules are copied next to the config, so the shipped relative rule_files entry is what loads them.
    shutil.copy(ALERTS_YML, folder / "alerts.yml")
    (folder / "prometheus.yml").write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = (folder / "prometheus.log").open("w")
    process = subprocess.Popen(
        [PROMETHEUS, f"--config.file={folder / 'prometheus.yml'}", f"--storage.tsdb.path={folder / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}"], stdout=log, stderr=subprocess.STDOUT)

    def fervid_target_up():
        assert process.poll() is None, "prometheus exited:\n" + (folder / "prometheus.log").read_text()[-3000:]
        try:
            targets = api(base, "/api/v1/targets")["data"]["activeTargets"]
        except OSError:
            return None
        return next((t for t in targets if t["labels"].get("job") == "fervid" and t["health"] == "up"), None)

    try:
        target = wait_for(fervid_target_up, 60, what="Prometheus to report the fervid target up")
        yield {"base": base, "target": target, "folder": folder}
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)
        log.close()


def query(base: str, expr: str) -> list:
    document = api(base, "/api/v1/query", query=expr)
    assert document["status"] == "success", f"{expr}: {document}"
    return document["data"]["result"]


def exemption(expr: str) -> str | None:
    """Why ``expr`` may return no data here, or None when it must return data."""
    for metric, _ in analyze(expr)["selectors"]:
        if metric in EVENT_SERIES:
            return EVENT_SERIES[metric]
    if re.search(r"\boffset\b", expr):
        return HISTORY_REASON
    return None


def check_queries(base: str, exprs: list[tuple[str, str]], timeout: float = 60) -> None:
    """Every query succeeds; every one not exempt returns data (retried: rates need two scrapes)."""
    pending = dict(exprs)  # expr -> where it comes from
    deadline = time.monotonic() + timeout
    while True:
        for expr in list(pending):
            if query(base, expr) or exemption(expr):
                del pending[expr]
        if not pending or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert not pending, "no data for:\n" + "\n".join(f"{where}: {expr}" for expr, where in pending.items())


def grafana_to_promql(expr: str) -> str:
    for variable in sorted(GRAFANA_VARIABLES, key=len, reverse=True):
        expr = expr.replace(variable, GRAFANA_VARIABLES[variable])
    assert "$" not in expr, f"unknown Grafana variable in {expr!r}"
    return expr


@needs_prometheus
def test_prometheus_scrapes_fervid(prometheus):
    assert prometheus["target"]["scrapePool"] == "fervid"
    values = api(prometheus["base"], "/api/v1/label/stream/values",
                 **{"match[]": "fervid_frames_captured_total"})["data"]
    assert set(STREAMS) <= set(values), "the dashboard's stream variable would not list every stream"


@needs_prometheus
def test_every_dashboard_query_returns_data(prometheus):
    check_queries(prometheus["base"], [(grafana_to_promql(expr), f"panel {title!r}")
                                       for title, expr in dashboard_queries()])


@needs_prometheus
def test_every_documented_query_returns_data(prometheus):
    check_queries(prometheus["base"], [(expr, f"docs/monitoring.md {comment!r}") for comment, expr in doc_queries()])


@needs_prometheus
def test_alert_rules_load_and_their_expressions_evaluate(prometheus):
    base = prometheus["base"]
    names = {rule["alert"] for rule in alert_rules()}

    def evaluated():
        groups = api(base, "/api/v1/rules", type="alert")["data"]["groups"]
        rules = {rule["name"]: rule for group in groups if group["name"] == "fervid" for rule in group["rules"]}
        return set(rules) == names and all(rule["health"] != "unknown" for rule in rules.values()) and rules

    rules = wait_for(evaluated, 30, what="every alert rule to be loaded and evaluated")
    for name, rule in rules.items():
        assert rule["health"] == "ok", f"{name}: {rule.get('lastError')}"
    for rule in alert_rules():
        query(base, rule["expr"])  # the whole rule is valid PromQL here too (its result may be empty)
    check_queries(base, [(operand, f"alert {rule['alert']}") for rule in alert_rules()
                         for operand in operands(rule["expr"])])

    # Where an operand returns series, they carry the labels the annotations print.
    for rule in alert_rules():
        used = set(re.findall(r"\$labels\.(\w+)", " ".join(rule["annotations"].values())))
        for operand in operands(rule["expr"]):
            for series in query(base, operand):
                assert used <= set(series["metric"]), f"{rule['alert']}: {operand} lacks {used}"

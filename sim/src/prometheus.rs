//! A Prometheus-compatible query API over a synthetic usage history: `/api/v1/query` and
//! `/api/v1/query_range` (GET with a query string, or POST with a form body), answering in
//! Prometheus' JSON format (`{"status":"success","data":{"resultType":…,"result":[…]}}`, errors
//! as `{"status":"error","errorType":"bad_data","error":…}` with 400).
//!
//! It serves cAdvisor's `container_cpu_usage_seconds_total` and
//! `container_memory_working_set_bytes` and kube-state-metrics'
//! `kube_pod_container_status_last_terminated_reason` and `kube_pod_container_status_restarts_total`
//! with their usual labels, from
//! [`history::History`]. Only the forms [`promql::parse`] knows are answered.
//!
//! Reachable two ways: a plain-HTTP listener of its own on 127.0.0.1 ([`crate::Sim::prometheus_url`])
//! and the API server's service proxy to the seeded Service `monitoring/prometheus-operated`.

pub mod history;
pub mod promql;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde_json::{Value, json};

use history::{PodSeries, Samples};
use promql::{Expr, Selector};

pub use history::{ContainerHistory, History, Levels, OomKill, Restart};

/// Prometheus' default lookback for an instant vector selector.
const LOOKBACK: u64 = 300;
/// Prometheus refuses range queries of more points per series than this.
const MAX_POINTS: u64 = 11_000;
/// How long after the sim's start the history keeps producing points.
const SERVED_AFTER_START: std::time::Duration = std::time::Duration::from_secs(86_400);

/// Namespace, name and port of the Service that fronts the simulated Prometheus (the name the
/// Prometheus Operator gives its governing service).
pub const SERVICE_NAMESPACE: &str = "monitoring";
pub const SERVICE_NAME: &str = "prometheus-operated";
pub const SERVICE_PORT: u16 = 9090;

type Labels = BTreeMap<String, String>;

/// The sampled history, ready to answer queries.
#[derive(Debug)]
pub struct Prometheus {
    series: Vec<PodSeries>,
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// An answer: HTTP status and the JSON body.
pub type Answer = (u16, Value);

fn bad_data(error: impl Into<String>) -> Answer {
    (
        400,
        json!({"status": "error", "errorType": "bad_data", "error": error.into()}),
    )
}

impl Prometheus {
    /// Samples `history` up to now (and a day beyond, revealed as time passes).
    pub fn new(history: &History) -> Prometheus {
        let start = unix_now() as u64;
        Prometheus {
            series: history::sample(history, start, SERVED_AFTER_START),
        }
    }

    /// Answers `path` (`api/v1/query` or `api/v1/query_range`, with or without a leading `/`)
    /// with the request's parameters (query string and form body merged).
    pub fn answer(&self, path: &str, params: &HashMap<String, String>) -> Answer {
        self.answer_at(path, params, unix_now())
    }

    fn answer_at(&self, path: &str, params: &HashMap<String, String>, now: f64) -> Answer {
        let Some(query) = params.get("query") else {
            return bad_data("invalid parameter \"query\": query must not be empty");
        };
        let expr = match promql::parse(query) {
            Ok(expr) => expr,
            Err(e) => return bad_data(e),
        };
        match path.trim_start_matches('/').trim_end_matches('/') {
            "api/v1/query" => {
                let t = match params.get("time").map(|t| timestamp("time", t)).transpose() {
                    Ok(t) => t.unwrap_or(now),
                    Err(e) => return bad_data(e),
                };
                let result: Vec<Value> = self
                    .eval(&expr, t, now)
                    .into_iter()
                    .map(|(labels, v)| json!({"metric": labels, "value": [t, number(v)]}))
                    .collect();
                (
                    200,
                    json!({"status": "success", "data": {"resultType": "vector", "result": result}}),
                )
            }
            "api/v1/query_range" => match self.range(&expr, params, now) {
                Ok(result) => (
                    200,
                    json!({"status": "success", "data": {"resultType": "matrix", "result": result}}),
                ),
                Err(e) => bad_data(e),
            },
            other => (
                404,
                json!({"status": "error", "errorType": "not_found", "error": format!("no API at /{other}")}),
            ),
        }
    }

    fn range(&self, expr: &Expr, params: &HashMap<String, String>, now: f64) -> Result<Vec<Value>, String> {
        let get = |name: &str| {
            params
                .get(name)
                .ok_or_else(|| format!("invalid parameter \"{name}\": missing"))
        };
        let start = timestamp("start", get("start")?)?;
        let end = timestamp("end", get("end")?)?;
        if end < start {
            return Err("end timestamp must not be before start time".into());
        }
        let step = promql::parse_duration(get("step")?).map_err(|_| {
            "invalid parameter \"step\": zero or negative query resolution step widths are not accepted. \
             Try a positive integer"
                .to_owned()
        })?;
        if ((end - start) / step as f64) as u64 > MAX_POINTS {
            return Err(
                "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the \
                        query resolution (?step=XX)"
                    .into(),
            );
        }
        let mut matrix: BTreeMap<Labels, Vec<Value>> = BTreeMap::new();
        let mut t = start;
        while t <= end {
            for (labels, v) in self.eval(expr, t, now) {
                matrix.entry(labels).or_default().push(json!([t, number(v)]));
            }
            t += step as f64;
        }
        Ok(matrix
            .into_iter()
            .map(|(metric, values)| json!({"metric": metric, "values": values}))
            .collect())
    }

    /// The instant vector of `expr` at `t`; samples after `now` do not exist yet.
    fn eval(&self, expr: &Expr, t: f64, now: f64) -> Vec<(Labels, f64)> {
        let visible = t.min(now);
        match expr {
            Expr::Selector(selector) => self
                .matching(selector)
                .filter_map(|(labels, samples)| {
                    let from = t - LOOKBACK as f64;
                    let (_, v) = in_window(samples, from, visible).last()?;
                    Some((labels, *v))
                })
                .collect(),
            Expr::Rate(selector, range) => self
                .matching(selector)
                .filter_map(|(mut labels, samples)| {
                    let window = in_window(samples, t - *range as f64, visible);
                    let (first, last) = (window.first()?, window.last()?);
                    if last.0 <= first.0 {
                        return None;
                    }
                    // A counter without resets: the increase over the time between the samples.
                    labels.remove("__name__");
                    Some((labels, (last.1 - first.1) / (last.0 - first.0) as f64))
                })
                .collect(),
            Expr::MaxOverTime(selector, range) => self
                .matching(selector)
                .filter_map(|(mut labels, samples)| {
                    let window = in_window(samples, t - *range as f64, visible);
                    let max = window.iter().map(|(_, v)| *v).reduce(f64::max)?;
                    labels.remove("__name__");
                    Some((labels, max))
                })
                .collect(),
            Expr::Increase(selector, range) => self
                .matching(selector)
                .filter_map(|(mut labels, samples)| {
                    let window = in_window(samples, t - *range as f64, visible);
                    if window.len() < 2 {
                        return None;
                    }
                    labels.remove("__name__");
                    Some((labels, extrapolated_increase(window, t - *range as f64, t)))
                })
                .collect(),
            Expr::Sum(inner) => {
                let values = self.eval(inner, t, now);
                if values.is_empty() {
                    Vec::new()
                } else {
                    vec![(Labels::new(), values.iter().map(|(_, v)| v).sum())]
                }
            }
        }
    }

    /// The series of `selector`'s metric whose labels all match, with their labels.
    fn matching<'a>(&'a self, selector: &'a Selector) -> impl Iterator<Item = (Labels, &'a Samples)> + 'a {
        self.series.iter().filter_map(move |s| {
            let (labels, samples) = series_of(s, &selector.metric)?;
            selector
                .matchers
                .iter()
                .all(|m| m.matches(labels.get(&m.label).map_or("", String::as_str)))
                .then_some((labels, samples))
        })
    }
}

/// The labels and samples of `metric` for one pod's container, as cAdvisor (through the kubelet
/// job of kube-prometheus) and kube-state-metrics label them.
fn series_of<'a>(s: &'a PodSeries, metric: &str) -> Option<(Labels, &'a Samples)> {
    let mut labels: Labels = [
        ("__name__", metric),
        ("namespace", &s.namespace),
        ("pod", &s.pod),
        ("container", &s.container),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let mut add = |k: &str, v: &str| labels.insert(k.to_owned(), v.to_owned());
    let samples = match metric {
        promql::CPU | promql::MEMORY => {
            add("job", "kubelet");
            add("metrics_path", "/metrics/cadvisor");
            add("image", "");
            if metric == promql::CPU {
                add("cpu", "total");
                &s.cpu_seconds
            } else {
                &s.memory
            }
        }
        promql::LAST_TERMINATED => {
            add("job", "kube-state-metrics");
            add("reason", "OOMKilled");
            &s.oom_killed
        }
        promql::RESTARTS => {
            add("job", "kube-state-metrics");
            &s.restarts_total
        }
        _ => return None,
    };
    if samples.is_empty() {
        return None;
    }
    Some((labels, samples))
}

/// `increase()` of a counter's samples in `(range_start, range_end]`, as Prometheus computes it
/// (promql/functions.go, `extrapolatedRate` with isCounter, not isRate): the rise from the first
/// to the last sample, a drop counted as a reset to zero (the value before it is added), then
/// extrapolated towards the range's edges — all the way when the first / last sample is within
/// 1.1 average sample intervals of the edge, else by half an interval — and at the start never
/// past the point where the counter would have been zero. So a counter that steps by whole
/// restarts can come out a little above a whole number; callers round.
fn extrapolated_increase(window: &[(u64, f64)], range_start: f64, range_end: f64) -> f64 {
    let (Some(&(first_t, first_v)), Some(&(last_t, last_v))) = (window.first(), window.last()) else {
        return 0.0;
    };
    let mut result = last_v - first_v;
    let mut previous = first_v;
    for (_, v) in &window[1..] {
        if *v < previous {
            result += previous;
        }
        previous = *v;
    }
    let sampled = (last_t - first_t) as f64;
    if sampled <= 0.0 {
        return 0.0;
    }
    let average = sampled / (window.len() - 1) as f64;
    let mut to_start = first_t as f64 - range_start;
    let to_end = range_end - last_t as f64;
    if result > 0.0 && first_v >= 0.0 {
        to_start = to_start.min(sampled * (first_v / result));
    }
    let threshold = average * 1.1;
    let mut interval = sampled;
    interval += if to_start < threshold {
        to_start
    } else {
        average / 2.0
    };
    interval += if to_end < threshold { to_end } else { average / 2.0 };
    result * (interval / sampled)
}

/// The samples with `from < time <= to`.
fn in_window(samples: &Samples, from: f64, to: f64) -> &[(u64, f64)] {
    let lo = samples.partition_point(|(t, _)| (*t as f64) <= from);
    let hi = samples.partition_point(|(t, _)| (*t as f64) <= to);
    &samples[lo..hi.max(lo)]
}

/// Prometheus writes sample values as strings (Go's shortest float formatting).
fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf".into() } else { "-Inf".into() }
    } else {
        format!("{v}")
    }
}

/// A unix timestamp in seconds (`1700000000` or `1700000000.5`); RFC 3339 is not supported here.
fn timestamp(name: &str, text: &str) -> Result<f64, String> {
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|t| t.is_finite())
        .ok_or_else(|| format!("invalid parameter \"{name}\": cannot parse {text:?} to a valid timestamp"))
}

/// The parameters of a request: the query string, then a form body's (POST), as Prometheus'
/// `r.ParseForm` merges them.
pub fn params(query: &str, content_type: &str, body: &[u8]) -> HashMap<String, String> {
    let mut params: HashMap<String, String> = form_urlencoded::parse(query.as_bytes()).into_owned().collect();
    if content_type.starts_with("application/x-www-form-urlencoded") {
        params.extend(form_urlencoded::parse(body).into_owned());
    }
    params
}

/// Serves the query API on `listener` (plain HTTP) until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    prometheus: Arc<Prometheus>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) {
    use axum::extract::{Request, State};
    use axum::http::header;
    use axum::response::IntoResponse;

    async fn handle(State(prometheus): State<Arc<Prometheus>>, request: Request) -> axum::response::Response {
        let (parts, body) = request.into_parts();
        let Ok(body) = axum::body::to_bytes(body, 1024 * 1024).await else {
            return axum::http::StatusCode::PAYLOAD_TOO_LARGE.into_response();
        };
        let content_type = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let params = params(parts.uri.query().unwrap_or(""), content_type, &body);
        let (code, value) = prometheus.answer(parts.uri.path(), &params);
        let code =
            axum::http::StatusCode::from_u16(code).unwrap_or(axum::http::StatusCode::INTERNAL_SERVER_ERROR);
        (
            code,
            [(header::CONTENT_TYPE, "application/json")],
            value.to_string(),
        )
            .into_response()
    }

    let router = axum::Router::new().fallback(handle).with_state(prometheus);
    let _ = axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const MI: f64 = 1024.0 * 1024.0;

    fn history() -> History {
        History {
            length: Duration::from_secs(7 * 86_400),
            scrape_interval: Duration::from_secs(60),
            busy_hours: (9, 17),
            peak_weekday: 1,
            containers: vec![ContainerHistory {
                namespace: "ns".into(),
                pod_prefix: "web-abc".into(),
                pods: 2,
                container: "web".into(),
                cpu_cores: Levels {
                    quiet: 0.1,
                    busy: 0.5,
                    peak: 1.0,
                },
                memory_bytes: Levels {
                    quiet: 100.0 * MI,
                    busy: 200.0 * MI,
                    peak: 300.0 * MI,
                },
                oom_kills: vec![OomKill {
                    pod: 0,
                    ago: Duration::from_secs(3600),
                    memory_bytes: 400.0 * MI,
                }],
                restarts: vec![
                    Restart {
                        pod: 0,
                        ago: Duration::from_secs(2 * 86_400),
                    },
                    Restart {
                        pod: 0,
                        ago: Duration::from_secs(10 * 86_400),
                    },
                ],
            }],
        }
    }

    /// A Tuesday 12:00 UTC (busy hours, not the peak day).
    const TUESDAY_NOON: u64 = 1_795_996_800 + 86_400 + 12 * 3600;

    fn prometheus() -> Prometheus {
        Prometheus {
            series: history::sample(&history(), TUESDAY_NOON, Duration::ZERO),
        }
    }

    fn query(q: &str) -> HashMap<String, String> {
        HashMap::from([("query".to_owned(), q.to_owned())])
    }

    #[test]
    fn instant_rate_and_sum_answer_in_prometheus_format() {
        let p = prometheus();
        let now = TUESDAY_NOON as f64;
        let (code, body) = p.answer_at(
            "/api/v1/query",
            &query(r#"rate(container_cpu_usage_seconds_total{namespace="ns",pod=~"web-abc-.*",container="web"}[5m])"#),
            now,
        );
        assert_eq!(code, 200, "{body}");
        assert_eq!(body["status"], "success");
        assert_eq!(body["data"]["resultType"], "vector");
        let result = body["data"]["result"].as_array().unwrap();
        assert_eq!(result.len(), 2);
        assert_eq!(result[0]["metric"]["pod"], "web-abc-0");
        assert!(
            result[0]["metric"].get("__name__").is_none(),
            "rate drops the name"
        );
        assert_eq!(result[0]["value"][1], "0.5");
        let (_, body) = p.answer_at(
            "/api/v1/query",
            &query(r#"sum(rate(container_cpu_usage_seconds_total{container="web"}[5m]))"#),
            now,
        );
        assert_eq!(body["data"]["result"][0]["metric"], json!({}));
        assert_eq!(body["data"]["result"][0]["value"][1], "1");
        let (_, body) = p.answer_at(
            "/api/v1/query",
            &query(r#"kube_pod_container_status_last_terminated_reason{reason="OOMKilled"}"#),
            now,
        );
        let result = body["data"]["result"].as_array().unwrap();
        assert_eq!(result.len(), 1, "only the killed pod has the series");
        assert_eq!(result[0]["metric"]["job"], "kube-state-metrics");
    }

    /// `increase()` over the restart counter counts the restarts inside the range (the OOMKill
    /// an hour ago and the restart 2 days ago; not the one 10 days ago, before the history,
    /// which leaves the counter at 1 when the week starts), extrapolated to the range's edges as
    /// Prometheus' `extrapolatedRate` does (promql/functions.go): a week of 1-minute samples
    /// covers 7 d − 1 min of the 7 d range, the first sample is within 1.1 intervals of the
    /// start and the counter (at 1) would not reach zero before it, so 2 restarts read as
    /// 2 × 7 d ÷ (7 d − 1 min). A container never restarted reads 0.
    #[test]
    fn increase_counts_the_restarts_in_the_range() {
        let p = prometheus();
        let now = TUESDAY_NOON as f64;
        let (code, body) = p.answer_at(
            "/api/v1/query",
            &query(
                r#"increase(kube_pod_container_status_restarts_total{namespace="ns",container="web"}[7d])"#,
            ),
            now,
        );
        assert_eq!(code, 200, "{body}");
        let result = body["data"]["result"].as_array().unwrap();
        assert_eq!(result.len(), 2, "every container has the counter: {body}");
        assert_eq!(result[0]["metric"]["pod"], "web-abc-0");
        assert_eq!(result[0]["metric"]["job"], "kube-state-metrics");
        assert!(result[0]["metric"].get("__name__").is_none());
        let value = |i: usize| result[i]["value"][1].as_str().unwrap().parse::<f64>().unwrap();
        let week = 7.0 * 86_400.0;
        assert!(
            (value(0) - 2.0 * week / (week - 60.0)).abs() < 1e-9,
            "{}",
            value(0)
        );
        assert_eq!(value(1), 0.0);
        // Over the last 3 hours only the OOMKill: the counter's rise, extrapolated by the
        // same rule.
        let (_, body) = p.answer_at(
            "/api/v1/query",
            &query(r#"increase(kube_pod_container_status_restarts_total{pod="web-abc-0"}[3h])"#),
            now,
        );
        let v: f64 = body["data"]["result"][0]["value"][1]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(v.round(), 1.0, "{body}");
        // A reset (a drop) counts as a restart from zero.
        let reset = extrapolated_increase(&[(60, 3.0), (120, 4.0), (180, 1.0), (240, 2.0)], 60.0, 240.0);
        assert!((reset - 3.0).abs() < 1e-9, "{reset}");
    }

    #[test]
    fn range_queries_give_a_matrix_at_each_step() {
        let p = prometheus();
        let now = TUESDAY_NOON as f64;
        let mut params = query(r#"container_memory_working_set_bytes{pod="web-abc-0"}"#);
        params.insert("start".into(), format!("{}", now - 7200.0));
        params.insert("end".into(), format!("{now}"));
        params.insert("step".into(), "10m".into());
        let (code, body) = p.answer_at("api/v1/query_range", &params, now);
        assert_eq!(code, 200, "{body}");
        assert_eq!(body["data"]["resultType"], "matrix");
        let values = body["data"]["result"][0]["values"].as_array().unwrap();
        assert_eq!(values.len(), 13);
        let peak = values
            .iter()
            .map(|v| v[1].as_str().unwrap().parse::<f64>().unwrap())
            .fold(0.0, f64::max);
        assert_eq!(
            peak,
            400.0 * MI,
            "the OOMKill's working set an hour ago is a sample"
        );
    }

    #[test]
    fn bad_requests_are_bad_data() {
        let p = prometheus();
        let now = TUESDAY_NOON as f64;
        let (code, body) = p.answer_at("/api/v1/query", &query("up"), now);
        assert_eq!(code, 400);
        assert_eq!(body["status"], "error");
        assert_eq!(body["errorType"], "bad_data");
        let mut params = query("container_memory_working_set_bytes");
        params.insert("start".into(), "10".into());
        params.insert("end".into(), "5".into());
        params.insert("step".into(), "1".into());
        assert_eq!(p.answer_at("/api/v1/query_range", &params, now).0, 400);
        params.insert("end".into(), "100000".into());
        let (code, body) = p.answer_at("/api/v1/query_range", &params, now);
        assert_eq!(code, 400);
        assert!(
            body["error"].as_str().unwrap().contains("11,000 points"),
            "{body}"
        );
    }

    #[test]
    fn form_bodies_and_query_strings_merge() {
        let params = params(
            "time=5",
            "application/x-www-form-urlencoded",
            b"query=sum%28up%29",
        );
        assert_eq!(params["query"], "sum(up)");
        assert_eq!(params["time"], "5");
    }
}

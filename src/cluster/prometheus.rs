//! Prometheus' HTTP query API for `recommend`: at `--prometheus-url`, or found in the cluster
//! (a `prometheus-operated`, `prometheus-server` or `prometheus-k8s` Service) and reached
//! through the API server's service proxy
//! (`/api/v1/namespaces/NS/services/NAME:PORT/proxy/api/v1/query_range?…`).
//!
//! Range queries only, with the step chosen by the caller; answers are parsed from Prometheus'
//! JSON (`data.result[].values` as `[unix seconds, "value"]`).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use super::Cluster;
use super::metrics::encode_query;
use crate::error::Error;

/// Longest wait for one query's answer.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Services a Prometheus installation commonly has (Prometheus Operator, the prometheus Helm
/// chart, kube-prometheus), and the namespaces it is commonly in.
const SERVICES: [&str; 3] = ["prometheus-operated", "prometheus-server", "prometheus-k8s"];
const NAMESPACES: [&str; 3] = ["monitoring", "prometheus", "kube-system"];

/// Where queries go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// `--prometheus-url` (without a trailing `/`).
    Url(String),
    /// The service proxy path up to `/proxy` (no trailing `/`).
    ServiceProxy {
        namespace: String,
        service: String,
        port: u16,
    },
}

impl Endpoint {
    /// For messages: the URL, or `service/NAME:PORT in NS (through the API server)`.
    pub fn describe(&self) -> String {
        match self {
            Endpoint::Url(url) => super::redact::url(url),
            Endpoint::ServiceProxy {
                namespace,
                service,
                port,
            } => {
                format!("service {namespace}/{service}:{port} (through the API server's service proxy)")
            }
        }
    }

    fn base(&self) -> String {
        match self {
            Endpoint::Url(url) => url.trim_end_matches('/').to_owned(),
            Endpoint::ServiceProxy {
                namespace,
                service,
                port,
            } => {
                format!("/api/v1/namespaces/{namespace}/services/{service}:{port}/proxy")
            }
        }
    }
}

/// One series of a matrix: its labels and `(unix seconds, value)` points.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub labels: BTreeMap<String, String>,
    pub points: Vec<(f64, f64)>,
}

#[derive(Deserialize)]
struct Answer {
    status: String,
    #[serde(default)]
    error: Option<String>,
    #[serde(default, rename = "errorType")]
    error_type: Option<String>,
    #[serde(default)]
    data: Option<Data>,
}

#[derive(Deserialize)]
struct Data {
    #[serde(rename = "resultType")]
    result_type: String,
    result: Vec<RawSeries>,
}

#[derive(Deserialize)]
struct RawSeries {
    metric: BTreeMap<String, String>,
    #[serde(default)]
    values: Vec<(f64, String)>,
}

/// Parses a `query_range` answer.
///
/// # Errors
/// An error answer (its type and message), or a body that is not Prometheus' format.
pub fn parse_matrix(body: &str) -> Result<Vec<Series>, String> {
    let answer: Answer =
        serde_json::from_str(body).map_err(|e| format!("not a Prometheus API answer ({e})"))?;
    if answer.status != "success" {
        return Err(format!(
            "{}: {}",
            answer.error_type.unwrap_or_else(|| "error".into()),
            answer.error.unwrap_or_default()
        ));
    }
    let data = answer.data.ok_or("a success answer without data")?;
    if data.result_type != "matrix" {
        return Err(format!("expected a matrix, got a {}", data.result_type));
    }
    Ok(data
        .result
        .into_iter()
        .map(|s| Series {
            labels: s.metric,
            points: s
                .values
                .into_iter()
                .filter_map(|(t, v)| v.parse::<f64>().ok().filter(|v| v.is_finite()).map(|v| (t, v)))
                .collect(),
        })
        .collect())
}

/// The step for a range query over `window` seconds: about 2,000 points (well under
/// Prometheus' 11,000 per series), at least 15 s, in whole minutes above a minute.
pub fn step_for(window: u64) -> u64 {
    let raw = (window / 2000).max(15);
    if raw > 60 { raw.div_ceil(60) * 60 } else { raw }
}

impl Cluster {
    /// The first Prometheus Service found in the usual namespaces, as a proxy endpoint on its
    /// first port; `Err` with the namespaces this user may not look in when there is none.
    ///
    /// # Errors
    /// API and transport errors other than not found / forbidden.
    pub(crate) async fn find_prometheus(&self) -> Result<Result<Endpoint, Vec<String>>, Error> {
        let mut namespaces: Vec<&str> = NAMESPACES.to_vec();
        namespaces.push(&self.namespace);
        let mut forbidden: Vec<String> = Vec::new();
        for namespace in namespaces {
            for service in SERVICES {
                let path = format!("/api/v1/namespaces/{namespace}/services/{service}");
                let text = match self.get_raw_text(&path).await {
                    Ok(text) => text,
                    Err(Error::Api {
                        status: Some(404), ..
                    }) => continue,
                    Err(Error::Api {
                        status: Some(403), ..
                    }) => {
                        if !forbidden.iter().any(|n| n == namespace) {
                            forbidden.push(namespace.to_owned());
                        }
                        continue;
                    }
                    Err(e) => return Err(e),
                };
                let object: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
                let port = object
                    .pointer("/spec/ports/0/port")
                    .and_then(serde_json::Value::as_u64)
                    .and_then(|p| u16::try_from(p).ok())
                    .unwrap_or(9090);
                return Ok(Ok(Endpoint::ServiceProxy {
                    namespace: namespace.to_owned(),
                    service: service.to_owned(),
                    port,
                }));
            }
        }
        Ok(Err(forbidden))
    }

    /// A range query from `start` to `end` (unix seconds) at `step` seconds.
    ///
    /// # Errors
    /// [`Error::Failed`] naming the endpoint and the query when Prometheus cannot be reached or
    /// refuses the query.
    pub(crate) async fn query_range(
        &self,
        endpoint: &Endpoint,
        query: &str,
        start: u64,
        end: u64,
        step: u64,
    ) -> Result<Vec<Series>, Error> {
        let path = format!(
            "{}/api/v1/query_range?query={}&start={start}&end={end}&step={step}",
            endpoint.base(),
            encode_query(query)
        );
        let failed = |why: String| {
            Error::failed(
                format!("Prometheus at {}: {why} (query {query})", endpoint.describe()),
                "check --prometheus-url (or the Prometheus service), or leave it out to sample metrics-server",
            )
        };
        let body = match endpoint {
            Endpoint::Url(_) => {
                let uri: http::Uri = path
                    .parse()
                    .map_err(|e| failed(format!("not a valid URL ({e})")))?;
                let (status, body) = super::http::get_text(uri, TIMEOUT).await.map_err(failed)?;
                if !(200..300).contains(&status) && status != 400 && status != 422 {
                    return Err(failed(format!("HTTP {status}")));
                }
                body
            }
            Endpoint::ServiceProxy { .. } => match self.get_raw_text(&path).await {
                Ok(body) => body,
                Err(Error::Api {
                    status: Some(code @ (400 | 422)),
                    message,
                    ..
                }) => return Err(failed(format!("HTTP {code}: {message}"))),
                Err(e) => return Err(e),
            },
        };
        parse_matrix(&body).map_err(failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matrices_parse_and_errors_say_why() {
        let body = r#"{"status":"success","data":{"resultType":"matrix","result":[
            {"metric":{"pod":"a"},"values":[[1700000000,"0.5"],[1700000060,"NaN"],[1700000120,"1e3"]]}]}}"#;
        let series = parse_matrix(body).unwrap();
        assert_eq!(series[0].labels["pod"], "a");
        assert_eq!(
            series[0].points,
            vec![(1_700_000_000.0, 0.5), (1_700_000_120.0, 1000.0)]
        );
        let err =
            parse_matrix(r#"{"status":"error","errorType":"bad_data","error":"parse error"}"#).unwrap_err();
        assert_eq!(err, "bad_data: parse error");
        assert!(parse_matrix("<html>").is_err());
    }

    #[test]
    fn steps_fit_the_window() {
        assert_eq!(step_for(7 * 86_400), 360);
        assert_eq!(step_for(3600), 15);
        assert_eq!(step_for(86_400), 43);
        assert!(30 * 86_400 / step_for(30 * 86_400) <= 11_000);
    }

    #[test]
    fn proxy_paths_follow_the_service_proxy_format() {
        let e = Endpoint::ServiceProxy {
            namespace: "monitoring".into(),
            service: "prometheus-operated".into(),
            port: 9090,
        };
        assert_eq!(
            e.base(),
            "/api/v1/namespaces/monitoring/services/prometheus-operated:9090/proxy"
        );
    }
}

//! The few PromQL forms the simulated Prometheus answers, parsed: a selector of one of the
//! served metrics, `rate(<CPU counter selector>[<duration>])`, `max_over_time(<memory gauge
//! selector>[<duration>])`, `increase(<restart counter selector>[<duration>])`, and `sum(...)` of
//! those. This is not
//! a PromQL engine: anything else is refused (`bad_data`), never answered approximately.

use regex::Regex;

/// The metrics the history serves.
pub const CPU: &str = "container_cpu_usage_seconds_total";
pub const MEMORY: &str = "container_memory_working_set_bytes";
pub const LAST_TERMINATED: &str = "kube_pod_container_status_last_terminated_reason";
pub const RESTARTS: &str = "kube_pod_container_status_restarts_total";

/// One label matcher (`=`, `!=`, `=~`, `!~`); regexes are anchored, as Prometheus anchors them.
#[derive(Debug, Clone)]
pub struct Matcher {
    pub label: String,
    pub op: MatchOp,
    pub value: String,
    regex: Option<Regex>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchOp {
    Equal,
    NotEqual,
    Regex,
    NotRegex,
}

impl Matcher {
    pub fn matches(&self, value: &str) -> bool {
        match (self.op, &self.regex) {
            (MatchOp::Equal, _) => value == self.value,
            (MatchOp::NotEqual, _) => value != self.value,
            (MatchOp::Regex, Some(re)) => re.is_match(value),
            (MatchOp::NotRegex, Some(re)) => !re.is_match(value),
            _ => false,
        }
    }
}

/// `metric{matchers}`.
#[derive(Debug, Clone)]
pub struct Selector {
    pub metric: String,
    pub matchers: Vec<Matcher>,
}

/// A parsed query.
#[derive(Debug, Clone)]
pub enum Expr {
    Selector(Selector),
    /// `rate(selector[range])`, range in seconds.
    Rate(Selector, u64),
    /// `max_over_time(selector[range])`, range in seconds.
    MaxOverTime(Selector, u64),
    /// `increase(selector[range])`, range in seconds.
    Increase(Selector, u64),
    Sum(Box<Expr>),
}

/// Parses one of the supported forms.
///
/// # Errors
/// Why the query is not one of them (the API answers it as `bad_data`).
pub fn parse(query: &str) -> Result<Expr, String> {
    let q = query.trim();
    let unsupported = || {
        format!(
            "the simulated Prometheus answers only a selector of {CPU}, {MEMORY}, {LAST_TERMINATED} or \
             {RESTARTS}, rate({CPU}{{...}}[d]), max_over_time({MEMORY}{{...}}[d]), \
             increase({RESTARTS}{{...}}[d]) and sum(...) of those; not {q:?}"
        )
    };
    if let Some(inner) = call(q, "sum") {
        let inner = parse(inner)?;
        if matches!(inner, Expr::Sum(_)) {
            return Err(unsupported());
        }
        return Ok(Expr::Sum(Box::new(inner)));
    }
    for (function, metric) in [("rate", CPU), ("max_over_time", MEMORY), ("increase", RESTARTS)] {
        let Some(inner) = call(q, function) else {
            continue;
        };
        let inner = inner.trim();
        let open = inner.rfind('[').ok_or_else(unsupported)?;
        let range = inner[open + 1..].strip_suffix(']').ok_or_else(unsupported)?;
        let seconds = parse_duration(range)?;
        let selector = selector(&inner[..open])?;
        if selector.metric != metric {
            return Err(format!(
                "{function}() of {} is not served here: only of {metric}",
                selector.metric
            ));
        }
        return Ok(match function {
            "rate" => Expr::Rate(selector, seconds),
            "increase" => Expr::Increase(selector, seconds),
            _ => Expr::MaxOverTime(selector, seconds),
        });
    }
    // Outside the label matchers (whose regexes may hold brackets), a plain selector has no
    // call or range.
    let outside = match (q.find('{'), q.rfind('}')) {
        (Some(open), Some(close)) => format!("{}{}", &q[..open], &q[close + 1..]),
        _ => q.to_owned(),
    };
    if outside.contains('(') || outside.contains('[') {
        return Err(unsupported());
    }
    let selector = selector(q)?;
    if ![CPU, MEMORY, LAST_TERMINATED, RESTARTS].contains(&selector.metric.as_str()) {
        return Err(unsupported());
    }
    Ok(Expr::Selector(selector))
}

/// The argument of `name(...)` when `q` is exactly such a call.
fn call<'a>(q: &'a str, name: &str) -> Option<&'a str> {
    q.strip_prefix(name)?
        .trim_start()
        .strip_prefix('(')?
        .strip_suffix(')')
}

fn selector(text: &str) -> Result<Selector, String> {
    let text = text.trim();
    let (metric, rest) = match text.find('{') {
        Some(i) => (&text[..i], &text[i..]),
        None => (text, ""),
    };
    let metric = metric.trim();
    let valid_name = !metric.is_empty()
        && metric
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
        && !metric.starts_with(|c: char| c.is_ascii_digit());
    if !valid_name {
        return Err(format!("parse error: bad metric name {metric:?}"));
    }
    let mut matchers = Vec::new();
    if !rest.is_empty() {
        let body = rest
            .strip_prefix('{')
            .and_then(|r| r.strip_suffix('}'))
            .ok_or_else(|| format!("parse error: unclosed label matchers in {text:?}"))?;
        let mut chars = body.trim();
        while !chars.is_empty() {
            let (matcher, rest) = one_matcher(chars)?;
            matchers.push(matcher);
            chars = rest.trim_start();
            chars = chars.strip_prefix(',').unwrap_or(chars).trim_start();
        }
    }
    Ok(Selector {
        metric: metric.to_owned(),
        matchers,
    })
}

/// `label op "value"` at the start of `text`; the rest after it.
fn one_matcher(text: &str) -> Result<(Matcher, &str), String> {
    let end = text
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .ok_or_else(|| format!("parse error: bad label matcher {text:?}"))?;
    let label = &text[..end];
    let rest = text[end..].trim_start();
    let (op, rest) = [
        ("=~", MatchOp::Regex),
        ("!~", MatchOp::NotRegex),
        ("!=", MatchOp::NotEqual),
        ("=", MatchOp::Equal),
    ]
    .iter()
    .find_map(|(token, op)| rest.strip_prefix(token).map(|r| (*op, r)))
    .ok_or_else(|| format!("parse error: no operator after label {label:?}"))?;
    let rest = rest.trim_start();
    let rest = rest
        .strip_prefix('"')
        .ok_or_else(|| format!("parse error: the value of {label:?} is not a double-quoted string"))?;
    let mut value = String::new();
    let mut escaped = false;
    let mut close = None;
    for (i, c) in rest.char_indices() {
        match (escaped, c) {
            (true, c) => {
                value.push(c);
                escaped = false;
            }
            (false, '\\') => escaped = true,
            (false, '"') => {
                close = Some(i);
                break;
            }
            (false, c) => value.push(c),
        }
    }
    let close = close.ok_or_else(|| format!("parse error: unterminated string for {label:?}"))?;
    let regex = match op {
        MatchOp::Regex | MatchOp::NotRegex => Some(
            Regex::new(&format!("^(?:{value})$"))
                .map_err(|e| format!("parse error: invalid regular expression {value:?}: {e}"))?,
        ),
        _ => None,
    };
    let matcher = Matcher {
        label: label.to_owned(),
        op,
        value,
        regex,
    };
    Ok((matcher, &rest[close + 1..]))
}

/// A Prometheus duration (`30s`, `5m`, `1h30m`, `7d`, `1w`) or plain seconds (`300`, `1.5`),
/// as the `step` parameter accepts; whole seconds.
///
/// # Errors
/// Not a duration.
pub fn parse_duration(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let bad = || format!("invalid duration {text:?}");
    if let Ok(seconds) = text.parse::<f64>() {
        return if seconds.is_finite() && seconds > 0.0 {
            Ok(seconds.ceil() as u64)
        } else {
            Err(bad())
        };
    }
    let mut total = 0u64;
    let mut number = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit = match (c, chars.peek()) {
            ('m', Some('s')) => {
                chars.next();
                0
            }
            ('s', _) => 1,
            ('m', _) => 60,
            ('h', _) => 3600,
            ('d', _) => 86_400,
            ('w', _) => 604_800,
            ('y', _) => 31_536_000,
            _ => return Err(bad()),
        };
        let n: u64 = number.parse().map_err(|_| bad())?;
        total += n * unit;
        number.clear();
    }
    if !number.is_empty() || total == 0 {
        return Err(bad());
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_forms_the_plugin_sends() {
        let q = r#"sum(rate(container_cpu_usage_seconds_total{namespace="llm-orchestrator",pod=~"orchestrator-.*",container="orchestrator"}[5m]))"#;
        let Expr::Sum(inner) = parse(q).unwrap() else {
            panic!()
        };
        let Expr::Rate(sel, 300) = *inner else { panic!() };
        assert_eq!(sel.matchers.len(), 3);
        assert!(sel.matchers[1].matches("orchestrator-abc-1"));
        assert!(!sel.matchers[1].matches("xorchestrator-abc-1"));
        let q = r#"kube_pod_container_status_last_terminated_reason{namespace="ns", reason="OOMKilled"}"#;
        assert!(matches!(parse(q).unwrap(), Expr::Selector(s) if s.matchers.len() == 2));
        assert!(matches!(parse(MEMORY).unwrap(), Expr::Selector(s) if s.matchers.is_empty()));
        let q = r#"max_over_time(container_memory_working_set_bytes{pod="a"}[6m])"#;
        assert!(matches!(parse(q).unwrap(), Expr::MaxOverTime(_, 360)));
        let q = r#"kube_pod_container_status_last_terminated_reason{pod=~"web-[a-z0-9]+-[a-z0-9]+"}"#;
        let Expr::Selector(sel) = parse(q).unwrap() else {
            panic!()
        };
        assert!(sel.matchers[0].matches("web-6b7c9d8f5b-0"));
        let q = r#"increase(kube_pod_container_status_restarts_total{namespace="ns",pod=~"web-.*",container="web"}[604800s])"#;
        assert!(matches!(parse(q).unwrap(), Expr::Increase(s, 604_800) if s.matchers.len() == 3));
        assert!(matches!(parse(RESTARTS).unwrap(), Expr::Selector(_)));
    }

    #[test]
    fn anything_else_is_refused() {
        for q in [
            "up",
            "avg(container_memory_working_set_bytes)",
            "rate(container_memory_working_set_bytes[5m])",
            "container_memory_working_set_bytes[5m]",
            "sum(sum(container_memory_working_set_bytes))",
            r#"container_memory_working_set_bytes{pod=~"("}"#,
            r#"container_memory_working_set_bytes{pod=x}"#,
            "max_over_time(container_cpu_usage_seconds_total[1h])",
            "avg_over_time(container_memory_working_set_bytes[1h])",
            // Restarts: increase() only (changes() and max_over_time() miscount a counter).
            "changes(kube_pod_container_status_restarts_total[7d])",
            "max_over_time(kube_pod_container_status_restarts_total[7d])",
            "increase(container_memory_working_set_bytes[1h])",
            "increase(kube_pod_container_status_restarts_total)",
        ] {
            assert!(parse(q).is_err(), "{q}");
        }
    }

    #[test]
    fn durations_parse_as_prometheus_writes_them() {
        assert_eq!(parse_duration("5m").unwrap(), 300);
        assert_eq!(parse_duration("1h30m").unwrap(), 5400);
        assert_eq!(parse_duration("7d").unwrap(), 604_800);
        assert_eq!(parse_duration("300").unwrap(), 300);
        assert_eq!(parse_duration("1.5").unwrap(), 2);
        assert!(parse_duration("5x").is_err());
        assert!(parse_duration("0").is_err());
    }
}

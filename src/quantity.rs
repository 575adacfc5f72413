//! Kubernetes resource quantities (`500m`, `2Gi`, `1e9`): exact parsing, comparison by value,
//! the arithmetic the plans need, and human-readable display.
//!
//! Values are held as an `i128` count of nano-units, the finest unit Kubernetes keeps
//! (`1n`), so `1000m == 1`, `1Gi == 1024Mi` and `1e3 == 1k` compare equal exactly.
//! Like the API server, digits finer than a nano-unit round up (away from zero).

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

use k8s_openapi::apimachinery::pkg::api::resource::Quantity as K8sQuantity;

const NANOS_PER_UNIT: i128 = 1_000_000_000;
/// Largest decimal exponent accepted in `1eN`; far beyond any real resource amount, and it keeps
/// the nano-unit arithmetic inside `i128`.
const MAX_EXPONENT: i32 = 24;

/// A resource quantity: compared, hashed and ordered by value; displayed as the text it was
/// written with (so patches carry the user's own spelling).
#[derive(Debug, Clone)]
pub struct Quantity {
    nanos: i128,
    text: String,
}

/// A quantity that could not be parsed; the message names the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuantityError {
    pub value: String,
    pub reason: String,
}

impl fmt::Display for QuantityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} is not a valid quantity: {}", self.value, self.reason)
    }
}

impl std::error::Error for QuantityError {}

impl Quantity {
    /// Parses Kubernetes quantity syntax: `[+-]digits[.digits][suffix]` where the suffix is a
    /// binary SI one (`Ki`..`Ei`), a decimal SI one (`n`, `u`, `m`, none, `k`, `M`, `G`, `T`, `P`,
    /// `E`) or an exponent (`e3`, `E-2`).
    ///
    /// # Errors
    /// Garbage, an unknown suffix, or a value too large for the exact representation.
    pub fn parse(text: &str) -> Result<Self, QuantityError> {
        let trimmed = text.trim();
        let nanos = parse_nanos(trimmed).map_err(|reason| QuantityError {
            value: text.to_string(),
            reason: reason.to_string(),
        })?;
        Ok(Self {
            nanos,
            text: trimmed.to_string(),
        })
    }

    /// A quantity of exactly `nanos` nano-units, written in canonical form.
    pub fn from_nanos(nanos: i128) -> Self {
        Self {
            nanos,
            text: canonical_text(nanos),
        }
    }

    /// A quantity of `millis` thousandths (CPU millicores).
    #[cfg(test)]
    pub fn from_millis(millis: i64) -> Self {
        Self::from_nanos(i128::from(millis) * 1_000_000)
    }

    /// A whole number of units (bytes for memory, cores for CPU).
    #[cfg(test)]
    pub fn from_units(units: i64) -> Self {
        Self::from_nanos(i128::from(units) * NANOS_PER_UNIT)
    }

    pub fn zero() -> Self {
        Self::from_nanos(0)
    }

    /// The exact value in nano-units.
    pub fn nanos(&self) -> i128 {
        self.nanos
    }

    /// The value in whole units (cores, bytes) as a float, for ratios and display.
    pub fn as_f64(&self) -> f64 {
        self.nanos as f64 / NANOS_PER_UNIT as f64
    }

    pub fn is_negative(&self) -> bool {
        self.nanos < 0
    }

    pub fn is_zero(&self) -> bool {
        self.nanos == 0
    }

    /// The text as written (trimmed); canonical form for computed quantities.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The canonical spelling of the value, independent of how it was written.
    pub fn canonical(&self) -> String {
        canonical_text(self.nanos)
    }

    /// `self + other`, `None` on overflow.
    pub fn checked_add(&self, other: &Quantity) -> Option<Quantity> {
        self.nanos.checked_add(other.nanos).map(Self::from_nanos)
    }

    /// `self - other`, `None` on overflow.
    #[cfg(test)]
    pub fn checked_sub(&self, other: &Quantity) -> Option<Quantity> {
        self.nanos.checked_sub(other.nanos).map(Self::from_nanos)
    }

    /// `self × factor`, `None` on overflow.
    #[cfg(test)]
    pub fn checked_mul(&self, factor: i64) -> Option<Quantity> {
        self.nanos.checked_mul(i128::from(factor)).map(Self::from_nanos)
    }

    /// `self ÷ other` as a float; `None` when `other` is zero.
    pub fn ratio(&self, other: &Quantity) -> Option<f64> {
        if other.nanos == 0 {
            None
        } else {
            Some(self.nanos as f64 / other.nanos as f64)
        }
    }

    /// The k8s-openapi form, carrying [`Quantity::text`].
    pub fn to_k8s(&self) -> K8sQuantity {
        K8sQuantity(self.text.clone())
    }
}

impl PartialEq for Quantity {
    fn eq(&self, other: &Self) -> bool {
        self.nanos == other.nanos
    }
}

impl Eq for Quantity {}

impl Hash for Quantity {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.nanos.hash(state);
    }
}

impl PartialOrd for Quantity {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Quantity {
    fn cmp(&self, other: &Self) -> Ordering {
        self.nanos.cmp(&other.nanos)
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FromStr for Quantity {
    type Err = QuantityError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<&K8sQuantity> for Quantity {
    type Error = QuantityError;
    fn try_from(value: &K8sQuantity) -> Result<Self, Self::Error> {
        Self::parse(&value.0)
    }
}

/// The JSON form of an API quantity: its canonical spelling ([`Quantity::canonical`], one
/// string per value), or the API's text as given when it does not parse.
pub fn canonical_of(q: &K8sQuantity) -> String {
    Quantity::parse(&q.0).map_or_else(|_| q.0.clone(), |q| q.canonical())
}

/// CPU for people: `500m` below one core, `1 core`, `1.5 cores`.
pub fn format_cpu(q: &Quantity) -> String {
    let nanos = q.nanos;
    if nanos.abs() < NANOS_PER_UNIT && nanos % 1_000_000 == 0 {
        return format!("{}m", nanos / 1_000_000);
    }
    if nanos.abs() < NANOS_PER_UNIT {
        return q.canonical();
    }
    let cores = trim_decimals(q.as_f64(), 3);
    if cores == "1" {
        "1 core".to_string()
    } else {
        format!("{cores} cores")
    }
}

/// Memory for people: `2 GiB`, `512 MiB`, `1.5 GiB`, `1 GB` (decimal when written decimal).
pub fn format_memory(q: &Quantity) -> String {
    // Memory below a byte is meaningless; round to whole bytes for display.
    let bytes = q.nanos / NANOS_PER_UNIT;
    let abs = bytes.abs();
    const BINARY: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    const DECIMAL: [&str; 6] = ["kB", "MB", "GB", "TB", "PB", "EB"];
    let binary: Vec<(i128, &str)> = BINARY
        .iter()
        .enumerate()
        .rev()
        .map(|(i, unit)| (1i128 << (10 * (i + 1)), *unit))
        .collect();
    let decimal: Vec<(i128, &str)> = DECIMAL
        .iter()
        .enumerate()
        .rev()
        .map(|(i, unit)| (1000i128.pow(i as u32 + 1), *unit))
        .collect();
    let shown =
        |(size, unit): (i128, &str)| format!("{} {unit}", trim_decimals(bytes as f64 / size as f64, 2));
    // Prefer an exact figure: the largest binary unit with at most two decimals (`1.5 GiB`), any
    // binary unit as an integer (`1025 MiB`), a decimal unit for decimal input (`1 GB`); else an
    // approximate binary figure.
    let largest = |units: &[(i128, &'static str)]| units.iter().copied().find(|(size, _)| abs >= *size);
    if let Some((size, unit)) = largest(&binary)
        && (abs * 100) % size == 0
    {
        return shown((size, unit));
    }
    if let Some(exact) = binary
        .iter()
        .copied()
        .find(|(size, _)| abs >= *size && abs % size == 0)
    {
        return shown(exact);
    }
    if let Some((size, unit)) = largest(&decimal)
        && (abs * 100) % size == 0
    {
        return shown((size, unit));
    }
    if let Some(approximate) = largest(&binary) {
        return shown(approximate);
    }
    format!("{bytes} B")
}

/// Display by resource name: CPU and memory-like resources get units, others their text.
pub fn format_resource(resource: &str, q: &Quantity) -> String {
    match resource {
        "cpu" | "requests.cpu" | "limits.cpu" => format_cpu(q),
        "memory" | "ephemeral-storage" | "requests.memory" | "limits.memory" => format_memory(q),
        _ => q.text().to_string(),
    }
}

fn trim_decimals(value: f64, decimals: usize) -> String {
    let text = format!("{value:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

fn parse_nanos(text: &str) -> Result<i128, &'static str> {
    if text.is_empty() {
        return Err("it is empty");
    }
    let (negative, rest) = match text.as_bytes()[0] {
        b'+' => (false, &text[1..]),
        b'-' => (true, &text[1..]),
        _ => (false, text),
    };
    let number_len = rest
        .bytes()
        .take_while(|b| b.is_ascii_digit() || *b == b'.')
        .count();
    let (number, suffix) = rest.split_at(number_len);
    let (int_part, frac_part) = number.split_once('.').unwrap_or((number, ""));
    if int_part.is_empty() && frac_part.is_empty() {
        return Err("it does not start with a number");
    }
    if frac_part.contains('.') {
        return Err("it has more than one decimal point");
    }
    let (decimal_exp, binary_pow) = parse_suffix(suffix)?;

    // Exact rational: digits × 2^binary_pow × 10^(decimal_exp + 9 - fraction digits).
    let frac_part = frac_part.trim_end_matches('0');
    let digits = format!("{}{}", int_part.trim_start_matches('0'), frac_part);
    let digits = digits.trim_start_matches('0');
    let too_large = "it is too large";
    let mut mantissa: i128 = 0;
    for b in digits.bytes() {
        mantissa = mantissa
            .checked_mul(10)
            .and_then(|m| m.checked_add(i128::from(b - b'0')))
            .ok_or(too_large)?;
    }
    mantissa = mantissa.checked_mul(1i128 << binary_pow).ok_or(too_large)?;
    let scale = decimal_exp + 9 - frac_part.len() as i32;
    let magnitude = if mantissa == 0 {
        0
    } else if scale >= 0 {
        let factor = 10i128.checked_pow(scale as u32).ok_or(too_large)?;
        mantissa.checked_mul(factor).ok_or(too_large)?
    } else {
        // Finer than a nano-unit: round up, as the API server does.
        match 10i128.checked_pow((-scale) as u32) {
            Some(divisor) => mantissa / divisor + i128::from(mantissa % divisor != 0),
            None => 1,
        }
    };
    Ok(if negative { -magnitude } else { magnitude })
}

/// Returns (power of ten, power of two) for a suffix.
fn parse_suffix(suffix: &str) -> Result<(i32, u32), &'static str> {
    let binary = match suffix {
        "Ki" => Some(10),
        "Mi" => Some(20),
        "Gi" => Some(30),
        "Ti" => Some(40),
        "Pi" => Some(50),
        "Ei" => Some(60),
        _ => None,
    };
    if let Some(pow) = binary {
        return Ok((0, pow));
    }
    let decimal = match suffix {
        "n" => Some(-9),
        "u" => Some(-6),
        "m" => Some(-3),
        "" => Some(0),
        "k" => Some(3),
        "M" => Some(6),
        "G" => Some(9),
        "T" => Some(12),
        "P" => Some(15),
        "E" => Some(18),
        _ => None,
    };
    if let Some(exp) = decimal {
        return Ok((exp, 0));
    }
    // `1E` alone is exa (handled above); `1E3`/`1e3` is an exponent.
    if let Some(exp) = suffix.strip_prefix(['e', 'E']) {
        let unsigned = exp.strip_prefix(['+', '-']).unwrap_or(exp);
        if unsigned.is_empty() || !unsigned.bytes().all(|b| b.is_ascii_digit()) {
            return Err("the exponent after 'e' must be an integer");
        }
        let value: i32 = exp.parse().map_err(|_| "the exponent is too large")?;
        if value.abs() > MAX_EXPONENT {
            return Err("the exponent is too large");
        }
        return Ok((value, 0));
    }
    Err("unknown suffix (use n, u, m, k, M, G, T, P, E, Ki, Mi, Gi, Ti, Pi, Ei or eN)")
}

fn canonical_text(nanos: i128) -> String {
    let sign = if nanos < 0 { "-" } else { "" };
    let abs = nanos.unsigned_abs();
    let units = NANOS_PER_UNIT as u128;
    if abs == 0 {
        return "0".to_string();
    }
    if !abs.is_multiple_of(units) {
        let (value, suffix) = if abs.is_multiple_of(1_000_000) {
            (abs / 1_000_000, "m")
        } else if abs.is_multiple_of(1_000) {
            (abs / 1_000, "u")
        } else {
            (abs, "n")
        };
        return format!("{sign}{value}{suffix}");
    }
    let whole = abs / units;
    for (pow, suffix) in [
        (60, "Ei"),
        (50, "Pi"),
        (40, "Ti"),
        (30, "Gi"),
        (20, "Mi"),
        (10, "Ki"),
    ] {
        let size = 1u128 << pow;
        if whole.is_multiple_of(size) {
            return format!("{sign}{}{suffix}", whole / size);
        }
    }
    for (exp, suffix) in [(18, "E"), (15, "P"), (12, "T"), (9, "G"), (6, "M"), (3, "k")] {
        let size = 10u128.pow(exp);
        if whole.is_multiple_of(size) {
            return format!("{sign}{}{suffix}", whole / size);
        }
    }
    format!("{sign}{whole}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn q(text: &str) -> Quantity {
        Quantity::parse(text).unwrap()
    }

    #[test]
    fn parses_every_form_to_exact_nanos() {
        let cases: &[(&str, i128)] = &[
            ("500m", 500_000_000),
            ("2", 2_000_000_000),
            ("1.5", 1_500_000_000),
            ("2Gi", 2 * (1 << 30) * NANOS_PER_UNIT),
            ("512Mi", 512 * (1 << 20) * NANOS_PER_UNIT),
            ("0.5Gi", (1 << 29) * NANOS_PER_UNIT),
            ("1e9", 1_000_000_000 * NANOS_PER_UNIT),
            ("1E3", 1_000 * NANOS_PER_UNIT),
            ("1e-3", 1_000_000),
            ("1E+2", 100 * NANOS_PER_UNIT),
            ("100k", 100_000 * NANOS_PER_UNIT),
            ("1M", 1_000_000 * NANOS_PER_UNIT),
            ("1G", 1_000_000_000 * NANOS_PER_UNIT),
            ("1T", 10i128.pow(12) * NANOS_PER_UNIT),
            ("1P", 10i128.pow(15) * NANOS_PER_UNIT),
            ("1E", 10i128.pow(18) * NANOS_PER_UNIT),
            ("1Ki", 1024 * NANOS_PER_UNIT),
            ("1Ti", (1 << 40) * NANOS_PER_UNIT),
            ("1Pi", (1 << 50) * NANOS_PER_UNIT),
            ("1Ei", (1 << 60) * NANOS_PER_UNIT),
            ("+1", NANOS_PER_UNIT),
            ("-1", -NANOS_PER_UNIT),
            ("250u", 250_000),
            ("7n", 7),
            (".5", 500_000_000),
            ("5.", 5 * NANOS_PER_UNIT),
            ("0", 0),
            ("  2Gi ", 2 * (1 << 30) * NANOS_PER_UNIT),
        ];
        for (text, nanos) in cases {
            assert_eq!(q(text).nanos(), *nanos, "{text}");
        }
    }

    #[test]
    fn rounds_below_nano_up() {
        assert_eq!(q("0.1n").nanos(), 1);
        assert_eq!(q("1.0000000001").nanos(), NANOS_PER_UNIT + 1);
        assert_eq!(q("-0.1n").nanos(), -1);
        // The largest mantissa with a negative exponent must not overflow while rounding.
        assert_eq!(
            q("170141183460469231731687303715884105727e-24").nanos(),
            170141183460469231731688
        );
    }

    #[test]
    fn compares_by_value_not_text() {
        assert_eq!(q("1000m"), q("1"));
        assert_eq!(q("1Gi"), q("1024Mi"));
        assert_eq!(q("1e3"), q("1k"));
        assert_eq!(q("0.5"), q("500m"));
        assert!(q("1Gi") > q("1G"));
        assert!(q("999m") < q("1"));
        assert!(q("-1") < q("0"));
    }

    #[test]
    fn rejects_garbage_naming_the_value() {
        for bad in [
            "", "abc", "1.2.3", "1Z", "1 Gi", "Gi", "1e", "1ex", "1e1.5", "--1", "1e999", ".",
        ] {
            let err = Quantity::parse(bad).unwrap_err();
            assert!(err.to_string().contains(&format!("{bad:?}")), "{bad}: {err}");
        }
        assert!(Quantity::parse("99999999999999999999999999999999999999Ei").is_err());
    }

    #[test]
    fn negative_is_parsed_and_flagged() {
        assert!(q("-500m").is_negative());
        assert!(!q("0").is_negative());
        assert!(q("0").is_zero());
    }

    #[test]
    fn keeps_the_users_text() {
        assert_eq!(q(" 1000m ").text(), "1000m");
        assert_eq!(q("1000m").to_k8s(), K8sQuantity("1000m".into()));
        assert_eq!(q("1000m").canonical(), "1");
    }

    #[test]
    fn canonical_forms() {
        assert_eq!(q("1536Mi").canonical(), "1536Mi");
        assert_eq!(q("2048Mi").canonical(), "2Gi");
        assert_eq!(q("1500m").canonical(), "1500m");
        assert_eq!(q("1000").canonical(), "1k");
        assert_eq!(q("3").canonical(), "3");
        assert_eq!(q("-250m").canonical(), "-250m");
        assert_eq!(q("1.5u").canonical(), "1500n");
    }

    #[test]
    fn arithmetic() {
        assert_eq!(q("500m").checked_add(&q("1.5")).unwrap(), q("2"));
        assert_eq!(q("1Gi").checked_sub(&q("512Mi")).unwrap(), q("512Mi"));
        assert_eq!(q("512Mi").checked_mul(4).unwrap(), q("2Gi"));
        assert_eq!(q("250m").ratio(&q("500m")), Some(0.5));
        assert_eq!(q("1").ratio(&q("0")), None);
        assert!(q("1Ei").checked_mul(i64::MAX).is_none());
        assert_eq!(Quantity::from_millis(1500), q("1.5"));
        assert_eq!(Quantity::from_units(1024), q("1Ki"));
    }

    #[test]
    fn converts_from_k8s() {
        let k = K8sQuantity("2Gi".into());
        assert_eq!(Quantity::try_from(&k).unwrap(), q("2048Mi"));
        assert!(Quantity::try_from(&K8sQuantity("lots".into())).is_err());
    }

    #[test]
    fn formats_cpu() {
        assert_eq!(format_cpu(&q("500m")), "500m");
        assert_eq!(format_cpu(&q("1")), "1 core");
        assert_eq!(format_cpu(&q("1000m")), "1 core");
        assert_eq!(format_cpu(&q("1.5")), "1.5 cores");
        assert_eq!(format_cpu(&q("2")), "2 cores");
        assert_eq!(format_cpu(&q("250u")), "250u");
    }

    #[test]
    fn formats_memory() {
        assert_eq!(format_memory(&q("2Gi")), "2 GiB");
        assert_eq!(format_memory(&q("512Mi")), "512 MiB");
        assert_eq!(format_memory(&q("1536Mi")), "1.5 GiB");
        assert_eq!(format_memory(&q("1G")), "1 GB");
        assert_eq!(format_memory(&q("100")), "100 B");
        assert_eq!(format_memory(&q("1.5G")), "1.5 GB");
        assert_eq!(format_memory(&q("1025Mi")), "1025 MiB");
        assert_eq!(format_memory(&q("1500Mi")), "1500 MiB");
        assert_eq!(format_memory(&q("1288490189")), "1.2 GiB");
        assert_eq!(format_resource("nvidia.com/gpu", &q("1")), "1");
        assert_eq!(format_resource("memory", &q("1Gi")), "1 GiB");
    }

    fn suffix_strategy() -> impl Strategy<Value = (&'static str, i128)> {
        prop::sample::select(vec![
            ("m", 1_000_000i128),
            ("", NANOS_PER_UNIT),
            ("k", 1_000 * NANOS_PER_UNIT),
            ("M", 1_000_000 * NANOS_PER_UNIT),
            ("G", 1_000_000_000 * NANOS_PER_UNIT),
            ("Ki", 1024 * NANOS_PER_UNIT),
            ("Mi", (1 << 20) * NANOS_PER_UNIT),
            ("Gi", (1 << 30) * NANOS_PER_UNIT),
            ("e2", 100 * NANOS_PER_UNIT),
            ("u", 1_000),
        ])
    }

    proptest! {
        #[test]
        fn parse_never_panics(text in "\\PC{0,40}") {
            let _ = Quantity::parse(&text);
        }

        #[test]
        fn parse_never_panics_on_number_like_text(
            text in "[+-]?[0-9]{0,40}(\\.[0-9]{0,40})?([eE][+-]?[0-9]{1,3}|[numkMGTPE]|[KMGTPE]i)?"
        ) {
            if let Ok(value) = Quantity::parse(&text) {
                prop_assert_eq!(Quantity::parse(&value.canonical()).unwrap(), value);
            }
        }

        #[test]
        fn canonical_round_trips(nanos in -(10i128.pow(28))..10i128.pow(28)) {
            let value = Quantity::from_nanos(nanos);
            prop_assert_eq!(Quantity::parse(&value.canonical()).unwrap().nanos(), nanos);
        }

        #[test]
        fn text_value_matches_integer_math((suffix, size) in suffix_strategy(), n in 0i64..1_000_000) {
            let parsed = Quantity::parse(&format!("{n}{suffix}")).unwrap();
            prop_assert_eq!(parsed.nanos(), i128::from(n) * size);
        }

        #[test]
        fn ordering_matches_values(
            (sa, za) in suffix_strategy(), a in 0i64..100_000,
            (sb, zb) in suffix_strategy(), b in 0i64..100_000,
        ) {
            let qa = Quantity::parse(&format!("{a}{sa}")).unwrap();
            let qb = Quantity::parse(&format!("{b}{sb}")).unwrap();
            prop_assert_eq!(qa.cmp(&qb), (i128::from(a) * za).cmp(&(i128::from(b) * zb)));
            prop_assert_eq!(qa == qb, qa.canonical() == qb.canonical());
        }
    }
}

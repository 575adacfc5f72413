//! Kubernetes resource quantities: parsing (`500m`, `2`, `1.5`, `2Gi`, `512Mi`, `1e9`, `1k`) to
//! milli-units, and formatting back in the canonical short forms the API prints.

/// Parses a quantity to thousandths of its unit (millicores for CPU, millibytes for memory),
/// rounding up as the API does. `None` for anything that is not a quantity.
pub fn parse_milli(text: &str) -> Option<i128> {
    let text = text.trim();
    let number_end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(number_end);
    if number.is_empty() || number == "." {
        return None;
    }
    let (mantissa_scale, exponent): (i128, i32) = match suffix {
        "" => (1, 0),
        "n" => (1, -9),
        "u" => (1, -6),
        "m" => (1, -3),
        "k" => (1, 3),
        "M" => (1, 6),
        "G" => (1, 9),
        "T" => (1, 12),
        "P" => (1, 15),
        "E" => (1, 18),
        "Ki" => (1 << 10, 0),
        "Mi" => (1 << 20, 0),
        "Gi" => (1 << 30, 0),
        "Ti" => (1 << 40, 0),
        "Pi" => (1 << 50, 0),
        "Ei" => (1 << 60, 0),
        s if s.starts_with(['e', 'E']) => (1, s[1..].parse().ok()?),
        _ => return None,
    };
    let negative = number.starts_with('-');
    let digits = number.trim_start_matches(['+', '-']);
    let (int_part, frac_part) = digits.split_once('.').unwrap_or((digits, ""));
    if !int_part
        .bytes()
        .chain(frac_part.bytes())
        .all(|b| b.is_ascii_digit())
    {
        return None;
    }
    // value = (int_part.frac_part) * mantissa_scale * 10^exponent * 1000, kept exact as a
    // fraction numerator / 10^frac_len, then rounded up.
    let numerator: i128 = format!("{int_part}{frac_part}").parse().unwrap_or(0);
    let mut num = numerator.checked_mul(mantissa_scale)?.checked_mul(1000)?;
    let mut den: i128 = 10i128.checked_pow(u32::try_from(frac_part.len()).ok()?)?;
    if exponent >= 0 {
        num = num.checked_mul(10i128.checked_pow(exponent.unsigned_abs())?)?;
    } else {
        den = den.checked_mul(10i128.checked_pow(exponent.unsigned_abs())?)?;
    }
    let value = (num + den - 1) / den;
    Some(if negative { -value } else { value })
}

/// CPU in millicores.
pub fn cpu_millis(text: &str) -> Option<i64> {
    parse_milli(text).and_then(|m| i64::try_from(m).ok())
}

/// Memory (or any count) in whole units, rounded up.
pub fn bytes(text: &str) -> Option<i64> {
    parse_milli(text).and_then(|m| i64::try_from((m + 999).div_euclid(1000)).ok())
}

/// A quantity given in milli-units of `resource`, parsed from a JSON value (string or number).
pub fn milli_of(value: &serde_json::Value) -> Option<i128> {
    match value {
        serde_json::Value::String(s) => parse_milli(s),
        serde_json::Value::Number(n) => parse_milli(&n.to_string()),
        _ => None,
    }
}

/// Formats millicores as the API does: whole cores as `2`, otherwise `1500m`.
pub fn format_cpu(millis: i64) -> String {
    if millis % 1000 == 0 {
        (millis / 1000).to_string()
    } else {
        format!("{millis}m")
    }
}

/// Formats bytes with the largest binary suffix that divides them exactly (`1Gi`, `700Mi`),
/// else as plain bytes.
pub fn format_bytes(bytes: i64) -> String {
    for (suffix, shift) in [("Ti", 40), ("Gi", 30), ("Mi", 20), ("Ki", 10)] {
        let unit = 1i64 << shift;
        if bytes != 0 && bytes % unit == 0 {
            return format!("{}{suffix}", bytes / unit);
        }
    }
    bytes.to_string()
}

/// Formats a quantity of the named resource (`cpu`, `requests.memory`, `pods`, ...) from milli-units.
pub fn format_for(resource: &str, milli: i128) -> String {
    let milli = i64::try_from(milli).unwrap_or(i64::MAX);
    if resource.ends_with("cpu") {
        format_cpu(milli)
    } else if resource.ends_with("memory") || resource.ends_with("storage") {
        format_bytes(milli.div_euclid(1000))
    } else {
        milli.div_euclid(1000).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_suffix_the_apiserver_accepts() {
        assert_eq!(parse_milli("100n"), Some(1), "rounded up to a thousandth");
        assert_eq!(parse_milli("5u"), Some(1));
        assert_eq!(parse_milli("1E"), Some(1_000_000_000_000_000_000_000));
        assert_eq!(parse_milli("1Ei"), Some((1i128 << 60) * 1000));
        assert_eq!(parse_milli("1.2.3"), None);
        assert_eq!(parse_milli("5x"), None);
        assert_eq!(parse_milli("abc"), None);
    }

    #[test]
    fn parses_cpu_forms() {
        assert_eq!(cpu_millis("500m"), Some(500));
        assert_eq!(cpu_millis("2"), Some(2000));
        assert_eq!(cpu_millis("1.5"), Some(1500));
        assert_eq!(cpu_millis("0.1"), Some(100));
        assert_eq!(cpu_millis("1000m"), cpu_millis("1"));
        assert_eq!(cpu_millis("abc"), None);
        assert_eq!(cpu_millis("1x"), None);
    }

    #[test]
    fn parses_memory_forms() {
        assert_eq!(bytes("2Gi"), Some(2 << 30));
        assert_eq!(bytes("512Mi"), Some(512 << 20));
        assert_eq!(bytes("64Ki"), Some(64 << 10));
        assert_eq!(bytes("1e9"), Some(1_000_000_000));
        assert_eq!(bytes("1k"), Some(1000));
        assert_eq!(bytes("1M"), Some(1_000_000));
        assert_eq!(bytes("1.5Gi"), Some(3 << 29));
        assert_eq!(bytes("1E3"), Some(1000));
        assert_eq!(bytes("100m"), Some(1), "a fraction of a byte rounds up");
    }

    #[test]
    fn formats_canonical_short_forms() {
        assert_eq!(format_cpu(1500), "1500m");
        assert_eq!(format_cpu(2000), "2");
        assert_eq!(format_bytes(1 << 30), "1Gi");
        assert_eq!(format_bytes(700 << 20), "700Mi");
        assert_eq!(format_bytes(1000), "1000");
        assert_eq!(format_for("requests.cpu", 500), "500m");
        assert_eq!(format_for("limits.memory", 2 * (1 << 30) * 1000), "2Gi");
        assert_eq!(format_for("pods", 4000), "4");
    }
}

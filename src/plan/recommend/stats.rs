//! Statistics over usage series for `recommend`: nearest-rank percentiles, peaks, medians, and
//! rounding up to the units the proposals are written in.

use crate::quantity::Quantity;

/// `(unix seconds, value)` points of one series.
pub type Points = Vec<(f64, f64)>;

/// The nearest-rank `p`-th percentile (0 < p ≤ 100) of `values`: the smallest value with at
/// least p % of the values at or below it. `None` for no values.
pub fn percentile(values: &[f64], p: f64) -> Option<f64> {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    if sorted.is_empty() {
        return None;
    }
    sorted.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// The largest finite value.
pub fn peak(values: &[f64]) -> Option<f64> {
    values.iter().copied().filter(|v| v.is_finite()).reduce(f64::max)
}

/// CPU cores rounded up to whole millicores (`0.4501` → `451m`).
pub fn cpu_quantity(cores: f64) -> Quantity {
    let millis = (cores * 1000.0 - 1e-6).ceil().max(1.0) as i128;
    let text = if millis % 1000 == 0 {
        format!("{}", millis / 1000)
    } else {
        format!("{millis}m")
    };
    Quantity::parse(&text).unwrap_or_else(|_| Quantity::from_nanos(millis * 1_000_000))
}

/// Bytes rounded up to whole MiB, written `NNNMi`.
pub fn memory_quantity(bytes: f64) -> Quantity {
    let mib = (bytes / (1024.0 * 1024.0) - 1e-9).ceil().max(1.0) as i128;
    Quantity::parse(&format!("{mib}Mi"))
        .unwrap_or_else(|_| Quantity::from_nanos(mib * 1_048_576 * 1_000_000_000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&values, 95.0), Some(95.0));
        assert_eq!(percentile(&values, 50.0), Some(50.0));
        assert_eq!(percentile(&values, 100.0), Some(100.0));
        assert_eq!(percentile(&[3.0, 1.0, 2.0], 95.0), Some(3.0));
        assert_eq!(percentile(&[], 95.0), None);
        assert_eq!(peak(&[1.0, 7.0, 2.0]), Some(7.0));
    }

    #[test]
    fn quantities_round_up() {
        assert_eq!(
            cpu_quantity(0.45).canonical(),
            Quantity::parse("450m").unwrap().canonical()
        );
        assert_eq!(
            cpu_quantity(0.4501).canonical(),
            Quantity::parse("451m").unwrap().canonical()
        );
        assert_eq!(memory_quantity(1035.0 * 1024.0 * 1024.0).text(), "1035Mi");
        assert_eq!(memory_quantity(1035.2 * 1024.0 * 1024.0).text(), "1036Mi");
    }
}

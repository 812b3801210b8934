//! The little statistics the report needs.

/// The median of `values` (the mean of the middle two for an even count); `NaN` when empty.
pub fn median(values: &[f64]) -> f64 {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted.sort_by(f64::total_cmp);
    let middle = sorted.len() / 2;
    if sorted.len() % 2 == 1 {
        sorted[middle]
    } else {
        (sorted[middle - 1] + sorted[middle]) / 2.0
    }
}

/// The median of `value` over `items`; `NaN` when empty.
pub fn median_of<T>(items: &[T], value: impl Fn(&T) -> f64) -> f64 {
    median(&items.iter().map(value).collect::<Vec<_>>())
}

/// The smallest and largest of `values`; `(NaN, NaN)` when empty.
pub fn range(values: &[f64]) -> (f64, f64) {
    values
        .iter()
        .copied()
        .filter(|v| !v.is_nan())
        .fold(None, |acc: Option<(f64, f64)>, v| match acc {
            None => Some((v, v)),
            Some((low, high)) => Some((low.min(v), high.max(v))),
        })
        .unwrap_or((f64::NAN, f64::NAN))
}

/// `value` rounded to `digits` decimals, so the JSON files do not carry float noise.
pub fn round_to(value: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (value * scale).round() / scale
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&[]).is_nan());
    }

    #[test]
    fn range_spans_the_values() {
        assert_eq!(range(&[3.0, 1.0, 2.0]), (1.0, 3.0));
        assert!(range(&[]).0.is_nan());
    }

    #[test]
    fn median_of_a_field() {
        let pairs = [(1.0, 10.0), (3.0, 30.0), (2.0, 20.0)];
        assert_eq!(median_of(&pairs, |pair| pair.1), 20.0);
    }

    #[test]
    fn round_to_decimals() {
        assert_eq!(round_to(1.23456, 3), 1.235);
        assert_eq!(round_to(76707.66, 1), 76707.7);
        assert!(round_to(f64::NAN, 3).is_nan());
    }
}

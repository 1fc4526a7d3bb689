//! The ranges of numeric options, checked by clap before any work: a value outside them
//! is a usage error (exit 2) naming the option, never a panic, an abort on a huge
//! allocation, a run that does not end, or a figure computed from nonsense.

use clap::builder::RangedU64ValueParser;

/// Widest hidden layer: a model of this width over a Norman-size graph still fits in memory.
pub const MAX_WIDTH: u64 = 4096;
/// Most hops of propagation through the network (beyond ~10 every gene reaches every other).
pub const MAX_HOPS: u64 = 10;

/// A count in `min..=max`.
pub fn count(min: u64, max: u64) -> RangedU64ValueParser<usize> {
    RangedU64ValueParser::<usize>::new().range(min..=max)
}

/// A size above 0 with no fixed maximum: the stage bounds it by the memory it needs.
pub fn size(s: &str) -> Result<usize, String> {
    match s.trim().parse::<i64>() {
        Ok(n) if n > 0 => Ok(n as usize),
        Ok(n) => Err(format!("{n} is not a positive size")),
        Err(_) => Err(format!("'{s}' is not a whole number")),
    }
}

fn number(s: &str) -> Result<f64, String> {
    let v: f64 = s.trim().parse().map_err(|_| format!("'{s}' is not a number"))?;
    if !v.is_finite() {
        return Err(format!("{s} is not a finite number"));
    }
    Ok(v)
}

/// A finite number above 0.
pub fn positive(s: &str) -> Result<f64, String> {
    let v = number(s)?;
    if v <= 0.0 {
        return Err(format!("{v} should be above 0"));
    }
    Ok(v)
}

/// A learning rate: above 0 and at most 1 (Adam's steps are this large at most).
pub fn learning_rate(s: &str) -> Result<f64, String> {
    let v = positive(s)?;
    if v > 1.0 {
        return Err(format!("{v} is above 1: training would diverge"));
    }
    Ok(v)
}

/// A finite number of at least 0 (a loss weight, a threshold).
pub fn non_negative(s: &str) -> Result<f64, String> {
    let v = number(s)?;
    if v < 0.0 {
        return Err(format!("{v} should be 0 or more"));
    }
    Ok(v)
}

/// A share in [0, 1].
pub fn fraction(s: &str) -> Result<f64, String> {
    let v = number(s)?;
    if !(0.0..=1.0).contains(&v) {
        return Err(format!("{v} should lie between 0 and 1"));
    }
    Ok(v)
}

/// A multiple of the network's edges to add: [0, 10].
pub fn edge_multiple(s: &str) -> Result<f64, String> {
    let v = non_negative(s)?;
    if v > 10.0 {
        return Err(format!("{v} is above 10 (times the network's edges)"));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_outside_their_range_are_refused_with_the_value() {
        for bad in ["nan", "inf", "-inf", "0", "-1", "1e30", "x"] {
            assert!(learning_rate(bad).is_err(), "{bad}");
        }
        assert_eq!(learning_rate("0.01"), Ok(0.01));
        assert!(fraction("1.5").unwrap_err().contains("between 0 and 1"));
        assert_eq!(fraction("0"), Ok(0.0));
        assert!(non_negative("-0.1").is_err() && non_negative("NaN").is_err());
        assert!(edge_multiple("11").is_err());
        assert!(positive("0").is_err() && positive("1e4").is_ok());
    }
}

//! The memory budget of a command (`--memory-limit`): requests whose estimated size exceeds it
//! are refused up front with the estimate, and solves stop storing tapes past it.

/// Parse `4G`, `512M`, `64K`, `1T` (binary units) or a plain number of bytes.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let (num, mult) = match t.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        Some((i, _)) => {
            let unit = t[i..].to_ascii_uppercase();
            let m: u64 = match unit.trim_end_matches("IB").trim_end_matches('B') {
                "" => 1,
                "K" => 1 << 10,
                "M" => 1 << 20,
                "G" => 1 << 30,
                "T" => 1 << 40,
                _ => return Err(format!("unknown size unit in {s:?}: use K, M, G or T")),
            };
            (&t[..i], m)
        }
        None => (t, 1),
    };
    let n: f64 = num.trim().parse().map_err(|_| format!("not a size: {s:?} (examples: 4G, 512M, 1000000)"))?;
    let bytes = n * mult as f64;
    if !(bytes.is_finite() && bytes >= 1.0 && bytes <= u64::MAX as f64) {
        return Err(format!("size {s:?} must be at least 1 byte"));
    }
    Ok(bytes as u64)
}

/// `bytes` in a unit a person reads (`1.5 GiB`).
pub fn human(bytes: u64) -> String {
    let b = bytes as f64;
    match bytes {
        0..=1023 => format!("{bytes} B"),
        1024..=1048575 => format!("{:.1} KiB", b / 1024.0),
        1048576..=1073741823 => format!("{:.1} MiB", b / 1048576.0),
        _ => format!("{:.1} GiB", b / 1073741824.0),
    }
}

/// Refuse a request estimated at `bytes` when it exceeds `limit`.
pub fn check(what: &str, bytes: u64, limit: u64) -> Result<(), crate::failure::Failure> {
    if bytes > limit {
        return Err(crate::failure::Failure::Input(format!(
            "{what} needs about {} of memory, over the limit of {} (raise it with --memory-limit)",
            human(bytes),
            human(limit)
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_binary_units_and_bad_ones_are_refused() {
        assert_eq!(parse_size("4G").unwrap(), 4 << 30);
        assert_eq!(parse_size("512MiB").unwrap(), 512 << 20);
        assert_eq!(parse_size("1.5k").unwrap(), 1536);
        assert_eq!(parse_size("100").unwrap(), 100);
        for bad in ["", "x", "4Q", "-1G", "0", "nan", "1e300T"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }
}

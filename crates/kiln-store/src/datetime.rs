//! Dates as ostree reads (`--timestamp`, `--keep-younger-than`: the forms
//! gnulib's parse_datetime accepts that people use) and prints them
//! (`2021-01-01 00:00:00 +0000`). Times without a zone are UTC.

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719468;
    let era = if z >= 0 { z } else { z - 146096 } / 146097;
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// `2021-01-01 00:00:00 +0000`
pub fn format_utc(ts: u64) -> String {
    let days = (ts / 86400) as i64;
    let rem = ts % 86400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} +0000",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// ISO 8601 `2021-01-01T00:00:00Z`.
pub fn format_iso(ts: u64) -> String {
    let s = format_utc(ts);
    format!("{}T{}Z", &s[..10], &s[11..19])
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];

fn month_of(s: &str) -> Option<u32> {
    let l = s.to_ascii_lowercase();
    MONTHS
        .iter()
        .position(|m| l.starts_with(m))
        .map(|i| i as u32 + 1)
}

fn parse_zone(s: &str) -> Option<i64> {
    let s = s.trim();
    if s.is_empty()
        || s.eq_ignore_ascii_case("z")
        || s.eq_ignore_ascii_case("utc")
        || s.eq_ignore_ascii_case("gmt")
    {
        return Some(0);
    }
    let (sign, rest) = match s.as_bytes()[0] {
        b'+' => (1, &s[1..]),
        b'-' => (-1, &s[1..]),
        _ => return None,
    };
    let digits: String = rest.chars().filter(|c| *c != ':').collect();
    if !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let (h, m) = match digits.len() {
        1 | 2 => (digits.parse::<i64>().ok()?, 0),
        4 => (
            digits[..2].parse::<i64>().ok()?,
            digits[2..].parse::<i64>().ok()?,
        ),
        _ => return None,
    };
    Some(sign * (h * 3600 + m * 60))
}

fn parse_hms(s: &str) -> Option<i64> {
    let mut it = s.split(':');
    let h: i64 = it.next()?.parse().ok()?;
    let m: i64 = it.next().map(|x| x.parse().ok()).unwrap_or(Some(0))?;
    let sec: f64 = it.next().map(|x| x.parse().ok()).unwrap_or(Some(0.0))?;
    if it.next().is_some() || h > 24 || m > 59 || sec >= 61.0 {
        return None;
    }
    Some(h * 3600 + m * 60 + sec as i64)
}

/// Parse a date; returns seconds since the epoch.
pub fn parse(input: &str) -> Option<u64> {
    let s = input.trim();
    if let Some(n) = s.strip_prefix('@') {
        return n.parse::<u64>().ok();
    }
    // ISO forms: DATE[(T| )TIME][ZONE]
    let (date, rest) = if s.len() >= 10 && s.as_bytes()[4] == b'-' && s.as_bytes()[7] == b'-' {
        (&s[..10], s[10..].trim_start_matches(['T', 't', ' ']))
    } else {
        return parse_words(s);
    };
    let y: i64 = date[..4].parse().ok()?;
    let m: u32 = date[5..7].parse().ok()?;
    let d: u32 = date[8..10].parse().ok()?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let (time, zone) = if rest.is_empty() {
        (0, 0)
    } else {
        let zpos = rest.find(['Z', 'z', '+', '-', ' ']).unwrap_or(rest.len());
        (parse_hms(&rest[..zpos])?, parse_zone(&rest[zpos..])?)
    };
    let t = days_from_civil(y, m, d) * 86400 + time - zone;
    u64::try_from(t).ok()
}

/// `Jan 1 2021`, `1 Jan 2021`, optionally followed by a time and zone.
fn parse_words(s: &str) -> Option<u64> {
    let words: Vec<&str> = s.split_whitespace().collect();
    let (mut mon, mut day, mut year, mut time, mut zone) = (None, None, None, 0i64, 0i64);
    for w in words {
        let w = w.trim_end_matches(',');
        if let Some(m) = month_of(w).filter(|_| w.chars().all(|c| c.is_ascii_alphabetic())) {
            mon = Some(m);
        } else if w.contains(':') {
            time = parse_hms(w)?;
        } else if w.starts_with(['+', '-'])
            || w.eq_ignore_ascii_case("utc")
            || w.eq_ignore_ascii_case("gmt")
        {
            zone = parse_zone(w)?;
        } else if let Ok(n) = w.parse::<i64>() {
            if n > 31 {
                year = Some(n);
            } else {
                day = Some(n as u32);
            }
        } else if ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
            .iter()
            .any(|d| w.to_ascii_lowercase().starts_with(d))
        {
            continue;
        } else {
            return None;
        }
    }
    let t = days_from_civil(year?, mon?, day?) * 86400 + time - zone;
    u64::try_from(t).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_ostree_accepts() {
        for s in [
            "2021-01-01 00:00:00 +0000",
            "2021-01-01T00:00:00Z",
            "@1609459200",
            "Jan 1 2021",
            "2021-01-01T02:00:00+02:00",
            "2021-01-01",
        ] {
            assert_eq!(parse(s), Some(1609459200), "{s}");
        }
        assert_eq!(parse("1609459200"), None);
        assert_eq!(parse("garbage"), None);
        assert_eq!(format_utc(1609459200), "2021-01-01 00:00:00 +0000");
        assert_eq!(format_utc(1609545600), "2021-01-02 00:00:00 +0000");
    }
}

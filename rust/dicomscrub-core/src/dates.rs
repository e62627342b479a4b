//! Date shifting for DA and DT values (proleptic Gregorian, years 1..=9999, like Python's
//! `datetime.date`), preserving intervals: every date of a file moves by the same offset.
//! The value grammar is the one of docs/plan.md "Dates" (and of `dicomscrub.reference`).

/// Days since 0001-01-01 (day 0) for a valid date.
fn days_from_civil(y: i64, m: i64, d: i64) -> Option<i64> {
    if !(1..=9999).contains(&y) || !(1..=12).contains(&m) || d < 1 || d > days_in_month(y, m) {
        return None;
    }
    // Howard Hinnant's algorithm, shifted so that 0001-01-01 is 0.
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468 + 719_162)
}

fn civil_from_days(n: i64) -> (i64, i64, i64) {
    let z = n + 719_468 - 719_162;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

/// Shift a date of 4, 6 or 8 digits (`YYYY`, `YYYYMM`, `YYYYMMDD`), keeping its precision.
fn shift_digits(date: &str, offset: i64) -> Option<String> {
    let y: i64 = date.get(0..4)?.parse().ok()?;
    let m: i64 = if date.len() >= 6 {
        date.get(4..6)?.parse().ok()?
    } else {
        1
    };
    let d: i64 = if date.len() == 8 {
        date.get(6..8)?.parse().ok()?
    } else {
        1
    };
    let n = days_from_civil(y, m, d)?.checked_add(offset)?;
    let (y, m, d) = civil_from_days(n);
    if !(1..=9999).contains(&y) {
        return None;
    }
    let full = format!("{y:04}{m:02}{d:02}");
    Some(full[..date.len()].to_string())
}

fn digits(s: &str) -> usize {
    s.bytes().take_while(u8::is_ascii_digit).count()
}

/// `&ZZXX` (a UTC offset) or nothing.
fn is_utc_offset_or_empty(s: &str) -> bool {
    s.is_empty()
        || (s.len() == 5 && (s.starts_with('+') || s.starts_with('-')) && digits(&s[1..]) == 4)
}

/// The time part of a DT after `YYYYMMDD`: `HH`, `HHMM`, `HHMMSS`, `HHMMSS.F{1,6}` or nothing,
/// then an optional UTC offset.
fn is_dt_rest(s: &str) -> bool {
    let n = digits(s);
    let rest = &s[n..];
    match n {
        0 | 2 | 4 => is_utc_offset_or_empty(rest),
        6 => {
            if let Some(frac) = rest.strip_prefix('.') {
                let f = digits(frac);
                (1..=6).contains(&f) && is_utc_offset_or_empty(&frac[f..])
            } else {
                is_utc_offset_or_empty(rest)
            }
        }
        _ => false,
    }
}

/// One value without range: `None` when it is not a valid date.
fn shift_single(v: &str, is_dt: bool, offset: i64) -> Option<String> {
    let n = digits(v);
    if !is_dt {
        return if v.len() == n && matches!(n, 4 | 6 | 8) {
            shift_digits(v, offset)
        } else {
            None
        };
    }
    let (date_len, ok) = if n >= 8 {
        (8, is_dt_rest(&v[8..]))
    } else if n == 4 || n == 6 {
        (n, is_utc_offset_or_empty(&v[n..]))
    } else {
        (0, false)
    };
    if !ok {
        return None;
    }
    Some(format!(
        "{}{}",
        shift_digits(&v[..date_len], offset)?,
        &v[date_len..]
    ))
}

/// One `\`-separated value: a single date, else a range `A-B` split at the leftmost `-` where
/// both sides are valid (either may be empty, not both); empty when neither.
fn shift_one(v: &str, is_dt: bool, offset: i64) -> String {
    let v = v.trim_matches(' ');
    if v.is_empty() {
        return String::new();
    }
    if let Some(s) = shift_single(v, is_dt, offset) {
        return s;
    }
    for (i, _) in v.match_indices('-') {
        let (left, right) = (&v[..i], &v[i + 1..]);
        if left.is_empty() && right.is_empty() {
            continue;
        }
        let side = |s: &str| {
            if s.is_empty() {
                Some(String::new())
            } else {
                shift_single(s, is_dt, offset)
            }
        };
        if let (Some(l), Some(r)) = (side(left), side(right)) {
            return format!("{l}-{r}");
        }
    }
    String::new()
}

/// Shift a whole (possibly multi-valued) DA or DT value; a value that is not a date becomes
/// empty in its place (a date that cannot be moved must not stay).
pub fn shift_value(value: &str, is_dt: bool, offset: i64) -> String {
    value
        .split('\\')
        .map(|v| shift_one(v, is_dt, offset))
        .collect::<Vec<_>>()
        .join("\\")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_round_trip() {
        assert_eq!(days_from_civil(1, 1, 1), Some(0));
        assert_eq!(days_from_civil(1970, 1, 1), Some(719_162));
        for n in [0, 1, 59, 365, 719_162, 738_000, 3_652_058] {
            let (y, m, d) = civil_from_days(n);
            assert_eq!(days_from_civil(y, m, d), Some(n));
        }
        assert_eq!(days_from_civil(2023, 2, 29), None);
    }

    #[test]
    fn values() {
        assert_eq!(shift_value("20240301", false, -1), "20240229");
        assert_eq!(
            shift_value("20240301\\20000101", false, -1),
            "20240229\\19991231"
        );
        assert_eq!(shift_value("2024", false, -1), "2023");
        assert_eq!(shift_value("202403", false, -1), "202402");
        assert_eq!(shift_value("20240301-", false, -1), "20240229-");
        assert_eq!(
            shift_value("20240301-20240302", false, -1),
            "20240229-20240301"
        );
        assert_eq!(
            shift_value("20240301120000.5-0500", true, -1),
            "20240229120000.5-0500"
        );
        assert_eq!(shift_value("2020-2021", true, -1), "2019-2021");
        assert_eq!(shift_value("2024abc", true, -1), "");
        assert_eq!(shift_value("2024.03.01\\20240301", false, -1), "\\20240229");
        assert_eq!(shift_value("00010101", false, -1), "");
        assert_eq!(shift_value("", false, -1), "");
    }
}

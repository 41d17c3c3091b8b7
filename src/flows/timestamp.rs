//! Timestamps of every CICFlowMeter dialect onto one time axis.
//!
//! The result is seconds since 1970-01-01 00:00 *as written in the file*
//! (naive: no time-zone conversion), which is enough to order flows and to
//! measure spans. Shapes accepted:
//!
//! * `d/m/yyyy h:mm[:ss]`: the 2017 and 2018 files. The 2017 files use a
//!   12-hour clock without AM/PM and capture ran 08:40-17:10, so in a 2017
//!   date an hour from 1 to 6 means the afternoon (+12 h).
//! * `dd/MM/yyyy hh:mm:ss AM|PM`: CICFlowMeter-V4 output.
//! * `yyyy-mm-dd hh:mm:ss[.ffffff]`: the corrected release and the Python
//!   `cicflowmeter` (a `T` separator is accepted too).

/// [`parse_timestamp`] with a one-entry memo (one a parsing thread):
/// consecutive rows of a flow file mostly carry the same timestamp text
/// (the 2017 files write minutes), which is then parsed once.
#[derive(Clone, Copy)]
pub struct TimestampMemo {
    text: [u8; TimestampMemo::CAP],
    /// `usize::MAX` until the first text.
    len: usize,
    value: Option<f64>,
}

impl Default for TimestampMemo {
    fn default() -> TimestampMemo {
        TimestampMemo {
            text: [0; TimestampMemo::CAP],
            len: usize::MAX,
            value: None,
        }
    }
}

impl TimestampMemo {
    /// Longest text remembered.
    const CAP: usize = 40;

    /// What [`parse_timestamp`] gives for `raw`.
    pub fn parse(&mut self, raw: &[u8]) -> Option<f64> {
        if raw.len() > Self::CAP {
            return parse_timestamp(raw);
        }
        if self.len == raw.len() && &self.text[..raw.len()] == raw {
            return self.value;
        }
        let value = parse_timestamp(raw);
        self.text[..raw.len()].copy_from_slice(raw);
        self.len = raw.len();
        self.value = value;
        value
    }
}

/// Parses one timestamp; `None` when its shape is not one of the above.
pub fn parse_timestamp(raw: &[u8]) -> Option<f64> {
    let s = std::str::from_utf8(raw).ok()?.trim();
    if s.is_empty() {
        return None;
    }
    let (date, rest) = s.split_once([' ', 'T'])?;
    let rest = rest.trim();
    let (year, month, day, day_first) = if let Some((y, r)) = date.split_once('-') {
        let (m, d) = r.split_once('-')?;
        (num(y)?, num(m)?, num(d)?, false)
    } else {
        let mut it = date.split('/');
        let d = num(it.next()?)?;
        let m = num(it.next()?)?;
        let y = num(it.next()?)?;
        if it.next().is_some() {
            return None;
        }
        (y, m, d, true)
    };
    let (clock, ampm) = match rest.rsplit_once(' ') {
        Some((c, suffix)) => {
            let suffix = suffix.to_ascii_uppercase();
            match suffix.as_str() {
                "AM" => (c.trim(), Some(false)),
                "PM" => (c.trim(), Some(true)),
                _ => return None,
            }
        }
        None => (rest, None),
    };
    let mut parts = clock.split(':');
    let mut hour = num(parts.next()?)?;
    let minute = num(parts.next()?)?;
    let second: f64 = match parts.next() {
        Some(sec) => {
            let v: f64 = sec.parse().ok()?;
            if !(0.0..61.0).contains(&v) {
                return None;
            }
            v
        }
        None => 0.0,
    };
    if parts.next().is_some() || hour > 23 || minute > 59 {
        return None;
    }
    match ampm {
        Some(pm) => {
            if !(1..=12).contains(&hour) {
                return None;
            }
            hour %= 12;
            if pm {
                hour += 12;
            }
        }
        None if day_first && year == 2017 && (1..=6).contains(&hour) => hour += 12,
        None => {}
    }
    if !(1..=12).contains(&month) || day == 0 || day > 31 || year < 1970 {
        return None;
    }
    let days = days_from_civil(year as i64, month, day);
    Some(days as f64 * 86_400.0 + hour as f64 * 3600.0 + minute as f64 * 60.0 + second)
}

fn num(s: &str) -> Option<u32> {
    let s = s.trim();
    if s.is_empty() || s.len() > 4 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
/// `days_from_civil`).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Formats seconds since the epoch as `yyyy-mm-dd hh:mm:ss`.
pub fn format_timestamp(t: f64) -> String {
    let mut out = String::with_capacity(19);
    write_timestamp(&mut out, t);
    out
}

/// [`format_timestamp`], appended to `out`.
pub fn write_timestamp(out: &mut String, t: f64) {
    use std::fmt::Write as _;
    let secs = t.floor() as i64;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    write!(
        out,
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
    .expect("to a String");
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt(s: &str) -> String {
        format_timestamp(parse_timestamp(s.as_bytes()).unwrap())
    }

    #[test]
    fn shapes() {
        assert_eq!(fmt("4/7/2017 1:52"), "2017-07-04 13:52:00");
        assert_eq!(fmt("4/7/2017 9:20"), "2017-07-04 09:20:00");
        assert_eq!(fmt("03/07/2017 11:47:00"), "2017-07-03 11:47:00");
        assert_eq!(fmt("14/02/2018 02:31:01"), "2018-02-14 02:31:01");
        assert_eq!(fmt("04/07/2017 01:52:03 PM"), "2017-07-04 13:52:03");
        assert_eq!(fmt("04/07/2017 12:10:00 AM"), "2017-07-04 00:10:00");
        assert_eq!(fmt("2017-07-04 18:07:01.839467"), "2017-07-04 18:07:01");
        assert_eq!(fmt("2017-07-04T18:07:01"), "2017-07-04 18:07:01");
        assert!(parse_timestamp(b"yesterday").is_none());
        assert!(parse_timestamp(b"").is_none());
        assert!(parse_timestamp(b"4/13/2017 1:52").is_none());
    }

    /// The memo gives what parsing gives, through repeats, changes, bad
    /// texts and texts longer than it holds.
    #[test]
    fn memo_parse_equals_parse() {
        let long = "2017-07-04 08:55:12.123456789012345678901234567";
        let texts = [
            "4/7/2017 8:55",
            "4/7/2017 8:55",
            "4/7/2017 8:56",
            "not a time",
            "not a time",
            "4/7/2017 8:55",
            long,
            long,
            "2017-07-04 08:55:12",
            "",
            "04/07/2017 01:02:03 PM",
            "4/7/2017 8:55",
        ];
        let mut memo = TimestampMemo::default();
        for t in texts {
            let want = parse_timestamp(t.as_bytes()).map(f64::to_bits);
            assert_eq!(memo.parse(t.as_bytes()).map(f64::to_bits), want, "{t}");
        }
    }
}

//! Converting the firmware's calendar time into UNIX seconds for the date at
//! boot feature.

/// Seconds since 1970-01-01 00:00:00 UTC for a proleptic Gregorian date and
/// time (the firmware clock is taken as UTC, as Limine does). `month` and
/// `day` are 1-based.
pub fn unix_seconds(year: i64, month: u32, day: u32, hour: u32, minute: u32, second: u32) -> i64 {
    // Howard Hinnant's days_from_civil.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    days * 86_400 + i64::from(hour) * 3600 + i64::from(minute) * 60 + i64::from(second)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        assert_eq!(unix_seconds(1970, 1, 1, 0, 0, 0), 0);
        assert_eq!(unix_seconds(2000, 3, 1, 0, 0, 0), 951_868_800);
        assert_eq!(unix_seconds(2024, 2, 29, 12, 34, 56), 1_709_210_096);
        assert_eq!(unix_seconds(2038, 1, 19, 3, 14, 8), 2_147_483_648);
        assert_eq!(unix_seconds(1969, 12, 31, 23, 59, 59), -1);
    }
}

//! Payloads from producers: `LogRecord::parse` on arbitrary bytes, then the timestamp parser
//! on whatever the time field holds, and on the raw bytes as text and as an epoch number. The
//! fast JSON scanner and the serde_json path must give the same record or error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use logging_core::LogRecord;
use logging_core::timestamp::{parse_epoch, parse_str, parse_str_with_offset};

fuzz_target!(|data: &[u8]| {
    assert_eq!(
        format!("{:?}", LogRecord::parse(data)),
        format!("{:?}", LogRecord::parse_serde_only(data))
    );
    if let Ok(record) = LogRecord::parse(data) {
        // Borrowed, never re-serialised.
        assert_eq!(record.raw(), data);
        for zone in [chrono_tz::UTC, chrono_tz::Asia::Tokyo, chrono_tz::America::St_Johns] {
            // The offset kept is the same instant.
            assert_eq!(
                record.timestamp(zone),
                record
                    .timestamp_with_offset(zone)
                    .map(|t| t.map(|t| t.to_utc()))
            );
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let zone = chrono_tz::Europe::London;
        assert_eq!(
            parse_str(text, zone),
            parse_str_with_offset(text, zone).map(|t| t.to_utc())
        );
        let _ = parse_epoch(text);
    }
});

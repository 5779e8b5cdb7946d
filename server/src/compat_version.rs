//! The Redis version kvd reports to clients (`compat-version`, fixed at start): HELLO's
//! `version`, INFO's `redis_version`, and Lua's `redis.REDIS_VERSION`/`REDIS_VERSION_NUM`.
//!
//! Client libraries read it to decide what to use, so it is a claim about behaviour. Only
//! versions whose claim docs/compatibility.md ("Reported version") has checked are
//! accepted, never an arbitrary string.

/// A Redis version kvd may report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CompatVersion {
    /// Redis 7.0.15: the semantics kvd implements and the differential tests compare with
    /// Debian's redis-server (the default).
    #[default]
    Redis7_0,
    /// Redis 7.4.0: for clients that enable a feature only from 7.4 although it relies on
    /// nothing kvd lacks (redis-py's client-side cache: HELLO 3, CLIENT TRACKING and
    /// RESP3 invalidation pushes). Commands added in 7.2/7.4 stay unknown to kvd.
    Redis7_4,
}

impl CompatVersion {
    /// Every accepted value.
    pub const ALL: [CompatVersion; 2] = [CompatVersion::Redis7_0, CompatVersion::Redis7_4];

    /// The version as Redis prints it (`7.0.15`).
    pub fn text(self) -> &'static str {
        match self {
            CompatVersion::Redis7_0 => "7.0.15",
            CompatVersion::Redis7_4 => "7.4.0",
        }
    }

    /// Redis's `REDIS_VERSION_NUM`: `0x00MMmmpp`.
    pub fn num(self) -> i64 {
        match self {
            CompatVersion::Redis7_0 => 0x07000f,
            CompatVersion::Redis7_4 => 0x070400,
        }
    }

    /// Reads a configured value: exactly one of [`CompatVersion::ALL`]'s texts.
    pub fn parse(s: &str) -> Result<CompatVersion, String> {
        Self::ALL
            .into_iter()
            .find(|v| v.text() == s)
            .ok_or_else(|| {
                let allowed: Vec<&str> = Self::ALL.iter().map(|v| v.text()).collect();
                format!(
                    "argument must be one of {} (see docs/compatibility.md)",
                    allowed.join(", ")
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_reads_back_and_its_number_matches_its_text() {
        for v in CompatVersion::ALL {
            assert_eq!(CompatVersion::parse(v.text()), Ok(v));
            let parts: Vec<i64> = v.text().split('.').map(|p| p.parse().unwrap()).collect();
            assert_eq!(v.num(), (parts[0] << 16) | (parts[1] << 8) | parts[2]);
        }
        assert_eq!(CompatVersion::default().text(), "7.0.15");
    }

    #[test]
    fn other_versions_are_refused() {
        for s in ["8.0.0", "7.4", "7.2.4", "", "7.4.0-kvd"] {
            let e = CompatVersion::parse(s).unwrap_err();
            assert!(e.contains("7.0.15, 7.4.0"), "{e}");
        }
    }
}

//! The Argo Rollouts controller version: an input, because the verdict depends on it
//! (the fix of upstream issue #3850 landed in v1.8.2; v1.9 changed full promotion; v1.10 lets
//! job metrics end Inconclusive).

use std::fmt;
use std::str::FromStr;

/// `major.minor.patch` of an Argo Rollouts controller. Pre-release suffixes are accepted and
/// ignored, so `v1.10.0-rc1` counts as 1.10.0 (job metrics can be Inconclusive from rc1 on).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ControllerVersion {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl ControllerVersion {
    /// The current stable line (1.8 and 1.9 are both supported upstream; 1.9 is the newest).
    pub const DEFAULT: Self = Self::new(1, 9, 0);
    /// First controller that records the Inconclusive pause during a pause step (PR #3873).
    pub const INCONCLUSIVE_FIX: Self = Self::new(1, 8, 2);

    pub const fn new(major: u32, minor: u32, patch: u32) -> Self {
        Self {
            major,
            minor,
            patch,
        }
    }

    /// True on controllers that record the `InconclusiveAnalysisRun` pause during a pause step.
    pub fn records_inconclusive_pause(self) -> bool {
        self >= Self::INCONCLUSIVE_FIX
    }

    /// v1.9 promotes when available canary pods are `>=` spec.replicas (v1.8: `==`).
    pub fn full_promote_at_or_above(self) -> bool {
        self >= Self::new(1, 9, 0)
    }

    /// Job metrics can end Inconclusive from v1.10.0-rc1 on.
    pub fn job_can_inconclude(self) -> bool {
        self >= Self::new(1, 10, 0)
    }

    /// `consecutiveSuccessLimit` exists from v1.8.0 on.
    pub fn has_consecutive_success_limit(self) -> bool {
        self >= Self::new(1, 8, 0)
    }
}

impl Default for ControllerVersion {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl fmt::Display for ControllerVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

impl FromStr for ControllerVersion {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("`{s}` is not a version such as 1.8.1, v1.9 or 1.10.0-rc1");
        let core = s.trim().trim_start_matches('v');
        let core = core.split(['-', '+']).next().unwrap_or_default();
        let mut parts = core.split('.');
        let mut next = |required: bool| -> Result<u32, String> {
            match parts.next() {
                Some(p) => p.parse().map_err(|_| bad()),
                None if required => Err(bad()),
                None => Ok(0),
            }
        };
        let version = Self::new(next(true)?, next(true)?, next(false)?);
        if parts.next().is_some() {
            return Err(bad());
        }
        Ok(version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_common_spellings() {
        assert_eq!("1.8.1".parse(), Ok(ControllerVersion::new(1, 8, 1)));
        assert_eq!("v1.9".parse(), Ok(ControllerVersion::new(1, 9, 0)));
        assert_eq!("v1.10.0-rc1".parse(), Ok(ControllerVersion::new(1, 10, 0)));
        assert!("1".parse::<ControllerVersion>().is_err());
        assert!("1.x".parse::<ControllerVersion>().is_err());
        assert!("1.2.3.4".parse::<ControllerVersion>().is_err());
    }

    #[test]
    fn thresholds_follow_upstream_releases() {
        let v = |s: &str| s.parse::<ControllerVersion>().unwrap();
        assert!(!v("1.8.1").records_inconclusive_pause());
        assert!(v("1.8.2").records_inconclusive_pause());
        assert!(!v("1.8.4").full_promote_at_or_above());
        assert!(v("1.9.0").full_promote_at_or_above());
        assert!(!v("1.9.3").job_can_inconclude());
        assert!(v("1.10.0-rc1").job_can_inconclude());
        assert!(!v("1.7.2").has_consecutive_success_limit());
    }
}

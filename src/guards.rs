//! Guards: pure edits on the raw JSON of an object (the patch is built by the caller).

use std::fmt;
use std::str::FromStr;

use crate::version::ControllerVersion;

/// The guards a mutating request may apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Guard {
    /// Keeps a Rollout paused where it is while `InconclusiveAnalysisRun` is present.
    Status,
    /// Turns timed pauses of D1 Rollouts into indefinite ones.
    Hold,
    /// Makes an inconclusive measurement count as a failure in templates.
    FailClosed,
}

impl Guard {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Status => "status",
            Self::Hold => "hold",
            Self::FailClosed => "fail-closed",
        }
    }
}

/// `--guards`: `auto`, `none`, or a comma-separated list of guard names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GuardSet {
    pub auto: bool,
    pub status: bool,
    pub hold: bool,
    pub fail_closed: bool,
}

impl GuardSet {
    pub const AUTO: Self = Self {
        auto: true,
        status: false,
        hold: false,
        fail_closed: false,
    };
    pub const NONE: Self = Self {
        auto: false,
        status: false,
        hold: false,
        fail_closed: false,
    };

    /// The concrete set for a controller: `auto` is the status guard on >= 1.8.2 and hold
    /// before (the only guard that holds there).
    pub fn resolve(self, version: ControllerVersion) -> Self {
        if !self.auto {
            return self;
        }
        let fixed = version.records_inconclusive_pause();
        Self {
            auto: false,
            status: fixed,
            hold: !fixed,
            fail_closed: false,
        }
    }

    pub fn contains(self, guard: Guard) -> bool {
        match guard {
            Guard::Status => self.status,
            Guard::Hold => self.hold,
            Guard::FailClosed => self.fail_closed,
        }
    }
}

impl FromStr for GuardSet {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut set = Self::NONE;
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part {
                "auto" => set.auto = true,
                "none" => {}
                "status" => set.status = true,
                "hold" => set.hold = true,
                "fail-closed" => set.fail_closed = true,
                other => {
                    return Err(format!(
                        "unknown guard `{other}`: expected auto, none, status, hold or fail-closed"
                    ));
                }
            }
        }
        if set.auto && (set.status || set.hold || set.fail_closed) {
            return Err("`auto` cannot be combined with named guards".into());
        }
        Ok(set)
    }
}

impl fmt::Display for GuardSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.auto {
            return f.write_str("auto");
        }
        let names: Vec<_> = [Guard::Status, Guard::Hold, Guard::FailClosed]
            .into_iter()
            .filter(|g| self.contains(*g))
            .map(Guard::as_str)
            .collect();
        if names.is_empty() {
            f.write_str("none")
        } else {
            f.write_str(&names.join(","))
        }
    }
}

//! Checking a scenario's log against its expectations, line by line as the
//! guest prints, so that a forbidden line is noticed at once.

use crate::qemu::Outcome;
use crate::scenario::{Exit, Scenario};

/// The state of one scenario's checks.
#[derive(Debug)]
pub struct Matcher<'a> {
    scenario: &'a Scenario,
    /// Lines seen so far.
    line_count: usize,
    /// For each expected pattern matched so far: the 1-based line and text.
    matched: Vec<(usize, String)>,
    /// The first forbidden line: pattern index, 1-based line, text.
    forbidden: Option<(usize, usize, String)>,
}

impl<'a> Matcher<'a> {
    /// A matcher that has seen nothing yet.
    pub fn new(scenario: &'a Scenario) -> Self {
        Self {
            scenario,
            line_count: 0,
            matched: Vec::new(),
            forbidden: None,
        }
    }

    /// Checks one serial line. Returns `true` when it is the first line to
    /// match a forbidden pattern.
    pub fn feed(&mut self, line: &str) -> bool {
        self.line_count += 1;
        // One line may satisfy several expectations in a row: whether the
        // kernel prints a diagnostic on one line or on two does not matter.
        while let Some(next) = self.scenario.expect.get(self.matched.len()) {
            if !next.matches(line) {
                break;
            }
            self.matched.push((self.line_count, line.to_string()));
        }
        if self.forbidden.is_none()
            && let Some(index) = self.scenario.forbid.iter().position(|p| p.matches(line))
        {
            self.forbidden = Some((index, self.line_count, line.to_string()));
            return true;
        }
        false
    }

    /// Every reason the scenario failed, given how QEMU ended; empty when
    /// it passed.
    pub fn failures(&self, outcome: &Outcome) -> Vec<String> {
        let mut reasons = Vec::new();
        let exit_ok = matches!(
            (self.scenario.exit, outcome),
            (Exit::Success, Outcome::GuestSuccess)
                | (Exit::Failure, Outcome::GuestFailure)
                | (Exit::Poweroff, Outcome::NoVerdict)
        );
        if !exit_ok {
            reasons.push(format!(
                "expected the guest to end with {}, but {}",
                describe_exit(self.scenario.exit),
                outcome
            ));
        }
        if let Some(pattern) = self.scenario.expect.get(self.matched.len()) {
            let total = self.scenario.expect.len();
            let position = self.matched.len() + 1;
            let after = match self.matched.last() {
                Some((line, text)) => format!(" after log line {line} `{text}`"),
                None => String::new(),
            };
            reasons.push(format!(
                "expected line {position} of {total} never appeared{after}: {pattern}"
            ));
        }
        if let Some((index, line, text)) = &self.forbidden {
            reasons.push(format!(
                "forbidden {} appeared at log line {line}: `{text}`",
                self.scenario.forbid[*index]
            ));
        }
        reasons
    }
}

fn describe_exit(exit: Exit) -> &'static str {
    match exit {
        Exit::Success => "success (kernel wrote 0x10 to port 0xf4, QEMU status 33)",
        Exit::Failure => "failure (kernel wrote 0x11 to port 0xf4, QEMU status 35)",
        Exit::Poweroff => "a power-off without verdict (QEMU status 0)",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::parse_file;
    use std::path::Path;
    use std::time::Duration;

    fn scenario(text: &str) -> Scenario {
        parse_file(text, Path::new("t.toml")).unwrap().remove(0)
    }

    const BOOT: &str = r#"
        [[scenario]]
        name = "boot"
        description = "d"
        smp = 2
        exit = "success"
        expect = ["smp: {smp} of {smp} CPUs online", "kernel: all work done"]
        forbid = ["panic", "EXCEPTION"]
    "#;

    #[test]
    fn passes_when_everything_holds() {
        let s = scenario(BOOT);
        let mut m = Matcher::new(&s);
        for line in [
            "loader: ok",
            "smp: 2 of 2 CPUs online",
            "noise",
            "kernel: all work done",
        ] {
            assert!(!m.feed(line));
        }
        assert!(m.failures(&Outcome::GuestSuccess).is_empty());
    }

    #[test]
    fn order_matters() {
        let s = scenario(BOOT);
        let mut m = Matcher::new(&s);
        m.feed("kernel: all work done");
        m.feed("smp: 2 of 2 CPUs online");
        let reasons = m.failures(&Outcome::GuestSuccess);
        assert_eq!(reasons.len(), 1);
        assert!(
            reasons[0]
                .contains("line 2 of 2 never appeared after log line 2 `smp: 2 of 2 CPUs online`"),
            "{reasons:?}"
        );
    }

    #[test]
    fn one_line_can_meet_consecutive_expectations() {
        let s = scenario(
            "[[scenario]]\nname='pf'\ndescription='d'\nexit='failure'\nexpect=['EXCEPTION #PF', {regex='cr2=0x0+dead000'}]\n",
        );
        let mut m = Matcher::new(&s);
        m.feed("EXCEPTION #PF page fault cr2=0x000000000dead000");
        assert!(m.failures(&Outcome::GuestFailure).is_empty());
        let mut m = Matcher::new(&s);
        m.feed("cr2=0x000000000dead000");
        m.feed("EXCEPTION #PF page fault");
        assert_eq!(
            m.failures(&Outcome::GuestFailure).len(),
            1,
            "order still matters across lines"
        );
    }

    #[test]
    fn reports_wrong_exit_missing_lines_and_forbidden_lines() {
        let s = scenario(BOOT);
        let mut m = Matcher::new(&s);
        m.feed("smp: 1 of 2 CPUs online");
        assert!(m.feed("kernel panic: oops"));
        assert!(
            !m.feed("EXCEPTION later"),
            "only the first forbidden line is reported"
        );
        let reasons = m.failures(&Outcome::TimedOut(Duration::from_secs(60)));
        assert_eq!(reasons.len(), 3, "{reasons:?}");
        assert!(
            reasons[0].contains("expected the guest to end with success")
                && reasons[0].contains("60 s"),
            "{}",
            reasons[0]
        );
        assert!(
            reasons[1].contains("line 1 of 2 never appeared: `smp: 2 of 2 CPUs online`"),
            "{}",
            reasons[1]
        );
        assert!(
            reasons[2].contains("forbidden `panic` appeared at log line 2: `kernel panic: oops`"),
            "{}",
            reasons[2]
        );
    }

    #[test]
    fn expected_failure_and_poweroff() {
        let fail = scenario("[[scenario]]\nname='f'\ndescription='d'\nexit='failure'\n");
        assert!(
            Matcher::new(&fail)
                .failures(&Outcome::GuestFailure)
                .is_empty()
        );
        assert_eq!(
            Matcher::new(&fail).failures(&Outcome::GuestSuccess).len(),
            1
        );
        let off = scenario("[[scenario]]\nname='p'\ndescription='d'\nexit='poweroff'\n");
        assert!(Matcher::new(&off).failures(&Outcome::NoVerdict).is_empty());
        assert_eq!(
            Matcher::new(&off)
                .failures(&Outcome::QemuError { code: Some(1) })
                .len(),
            1
        );
    }
}

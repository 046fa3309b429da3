//! Running QEMU: its command line, its serial output as clean lines, a time
//! limit, and what its exit status means.
//!
//! The kernel ends a run by writing to the `isa-debug-exit` port 0xf4; QEMU
//! then exits with `(value << 1) | 1`: 0x10 (success) gives 33, 0x11
//! (failure) gives 35. QEMU exiting 0 means the guest powered off or reset
//! without a verdict; under `-no-reboot` a triple fault ends the same way.

use crate::ansi::Cleaner;
use anyhow::{Context, Result};
use std::fmt;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

/// QEMU's exit status when the kernel reports success (port 0xf4 ← 0x10).
pub const EXIT_GUEST_SUCCESS: i32 = 33;
/// QEMU's exit status when the kernel reports failure (port 0xf4 ← 0x11).
pub const EXIT_GUEST_FAILURE: i32 = 35;

/// How a QEMU run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The kernel reported success.
    GuestSuccess,
    /// The kernel reported failure.
    GuestFailure,
    /// QEMU exited 0: the guest powered off or reset without a verdict.
    NoVerdict,
    /// QEMU failed by itself (bad option, missing file, ...).
    QemuError {
        /// Its exit status, `None` when a signal ended it.
        code: Option<i32>,
    },
    /// The time limit expired and QEMU was stopped.
    TimedOut(Duration),
    /// xtask stopped QEMU, for the reason given.
    Stopped(String),
}

impl Outcome {
    /// Reads QEMU's exit status.
    pub fn from_status(status: ExitStatus) -> Self {
        Self::from_code(status.code())
    }

    /// Maps QEMU's exit code (`None`: killed by a signal).
    pub fn from_code(code: Option<i32>) -> Self {
        match code {
            Some(EXIT_GUEST_SUCCESS) => Outcome::GuestSuccess,
            Some(EXIT_GUEST_FAILURE) => Outcome::GuestFailure,
            Some(0) => Outcome::NoVerdict,
            code => Outcome::QemuError { code },
        }
    }

    /// The exit status of `cargo xtask run` for this outcome.
    pub fn exit_code(&self) -> i32 {
        match self {
            Outcome::GuestSuccess => 0,
            Outcome::GuestFailure | Outcome::Stopped(_) => 1,
            Outcome::NoVerdict => 2,
            Outcome::QemuError { .. } => 3,
            Outcome::TimedOut(_) => 124,
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::GuestSuccess => write!(
                f,
                "the kernel reported success (QEMU exit status {EXIT_GUEST_SUCCESS})"
            ),
            Outcome::GuestFailure => write!(
                f,
                "the kernel reported failure (QEMU exit status {EXIT_GUEST_FAILURE})"
            ),
            Outcome::NoVerdict => write!(
                f,
                "the guest powered off or reset without reporting a result (QEMU exit status 0; \
                 with -no-reboot a triple fault also ends like this)"
            ),
            Outcome::QemuError { code: Some(code) } => {
                write!(
                    f,
                    "QEMU itself failed (exit status {code}); see its messages above or in the log"
                )
            }
            Outcome::QemuError { code: None } => write!(f, "QEMU was killed by a signal"),
            Outcome::TimedOut(limit) => write!(
                f,
                "the guest hung: no verdict within the {} s time limit, so QEMU was stopped",
                limit.as_secs()
            ),
            Outcome::Stopped(reason) => write!(f, "{reason}"),
        }
    }
}

/// The machine to start.
#[derive(Debug, Clone)]
pub struct Machine<'a> {
    /// CPUs.
    pub smp: u32,
    /// Memory in QEMU notation.
    pub memory: &'a str,
    /// OVMF code (read-only flash).
    pub ovmf_code: &'a Path,
    /// This run's copy of the OVMF variable store.
    pub ovmf_vars: &'a Path,
    /// The directory presented as the FAT boot drive.
    pub boot_dir: &'a Path,
    /// Serial and QEMU monitor multiplexed on the terminal (Ctrl-A X quits).
    pub monitor_on_stdio: bool,
    /// `-s -S`: wait for gdb on localhost:1234.
    pub gdb: bool,
    /// Extra arguments, appended last.
    pub extra: &'a [String],
}

/// QEMU's `-drive` values separate options with commas; a comma in a path
/// is written twice.
fn escape(path: &Path) -> String {
    path.display().to_string().replace(',', ",,")
}

impl Machine<'_> {
    /// The arguments for `qemu-system-x86_64`.
    pub fn args(&self) -> Vec<String> {
        let mut args: Vec<String> = [
            "-machine",
            "q35",
            "-cpu",
            "max",
            "-accel",
            "tcg,thread=multi",
            "-nic",
            "none",
            "-no-reboot",
            "-display",
            "none",
        ]
        .into_iter()
        .map(String::from)
        .collect();
        args.extend([
            "-smp".into(),
            self.smp.to_string(),
            "-m".into(),
            self.memory.to_string(),
        ]);
        if self.monitor_on_stdio {
            args.extend(["-serial".into(), "mon:stdio".into()]);
        } else {
            args.extend([
                "-serial".into(),
                "stdio".into(),
                "-monitor".into(),
                "none".into(),
            ]);
        }
        args.extend([
            "-drive".into(),
            format!(
                "if=pflash,format=raw,unit=0,readonly=on,file={}",
                escape(self.ovmf_code)
            ),
            "-drive".into(),
            format!(
                "if=pflash,format=raw,unit=1,file={}",
                escape(self.ovmf_vars)
            ),
            "-device".into(),
            "isa-debug-exit,iobase=0xf4,iosize=0x04".into(),
            "-drive".into(),
            format!("format=raw,file=fat:rw:{}", escape(self.boot_dir)),
        ]);
        if self.gdb {
            args.extend(["-s".into(), "-S".into()]);
        }
        args.extend(self.extra.iter().cloned());
        args
    }
}

/// Something QEMU produced while running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event<'a> {
    /// A clean line of the guest's serial output.
    Serial(&'a str),
    /// A line QEMU wrote to its standard error.
    Stderr(&'a str),
    /// Half a second passed without output.
    Tick,
}

/// What the caller wants after an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Flow {
    /// Keep going.
    Continue,
    /// Stop QEMU now, for this reason.
    Stop(String),
}

enum Message {
    Serial(String),
    Stderr(String),
    Closed,
}

/// Runs `command` (a configured QEMU), feeding `on_event` until QEMU exits,
/// the caller asks to stop, or `timeout` expires.
pub fn run(
    mut command: Command,
    stdin_inherit: bool,
    timeout: Option<Duration>,
    mut on_event: impl FnMut(Event<'_>) -> Flow,
) -> Result<Outcome> {
    command
        .stdin(if stdin_inherit {
            Stdio::inherit()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let program = command.get_program().to_string_lossy().into_owned();
    let mut child = command
        .spawn()
        .with_context(|| format!("could not start {program}"))?;
    let (tx, rx) = mpsc::channel();
    let stdout = child
        .stdout
        .take()
        .context("QEMU's output was not captured")?;
    let stderr = child
        .stderr
        .take()
        .context("QEMU's error output was not captured")?;
    let out_tx = tx.clone();
    thread::spawn(move || read_serial(stdout, &out_tx));
    thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(Message::Stderr(line)).is_err() {
                return;
            }
        }
        let _ = tx.send(Message::Closed);
    });

    let start = Instant::now();
    let deliver = |message: &Message, on_event: &mut dyn FnMut(Event<'_>) -> Flow| match message {
        Message::Serial(line) => on_event(Event::Serial(line)),
        Message::Stderr(line) => on_event(Event::Stderr(line)),
        Message::Closed => Flow::Continue,
    };
    let mut open_streams = 2;
    let stop_reason = loop {
        if open_streams == 0 {
            break None;
        }
        let wait = match timeout {
            Some(limit) => match limit.checked_sub(start.elapsed()) {
                Some(left) => left.min(Duration::from_millis(500)),
                None => break Some(Outcome::TimedOut(limit)),
            },
            None => Duration::from_millis(500),
        };
        let flow = match rx.recv_timeout(wait) {
            Ok(Message::Closed) => {
                open_streams -= 1;
                Flow::Continue
            }
            Ok(message) => deliver(&message, &mut on_event),
            Err(RecvTimeoutError::Timeout) => on_event(Event::Tick),
            Err(RecvTimeoutError::Disconnected) => break None,
        };
        if let Flow::Stop(reason) = flow {
            break Some(Outcome::Stopped(reason));
        }
    };

    match stop_reason {
        None => {
            let status = child.wait().context("could not wait for QEMU")?;
            Ok(Outcome::from_status(status))
        }
        Some(outcome) => {
            terminate(&mut child);
            // What QEMU printed before it went down still belongs in the log.
            let drain_until = Instant::now() + Duration::from_secs(1);
            while let Ok(message) =
                rx.recv_timeout(drain_until.saturating_duration_since(Instant::now()))
            {
                deliver(&message, &mut on_event);
            }
            Ok(outcome)
        }
    }
}

fn read_serial(mut stdout: impl Read, tx: &mpsc::Sender<Message>) {
    let mut cleaner = Cleaner::new();
    let mut buffer = [0u8; 4096];
    loop {
        match stdout.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                for line in cleaner.push(&buffer[..n]) {
                    if tx.send(Message::Serial(line)).is_err() {
                        return;
                    }
                }
            }
        }
    }
    if let Some(line) = cleaner.finish() {
        let _ = tx.send(Message::Serial(line));
    }
    let _ = tx.send(Message::Closed);
}

/// Stops QEMU: SIGTERM first (QEMU then restores the terminal it put in raw
/// mode), SIGKILL if it is still there after three seconds.
fn terminate(child: &mut Child) {
    if let Ok(None) = child.try_wait() {
        if let Some(pid) = i32::try_from(child.id())
            .ok()
            .and_then(rustix::process::Pid::from_raw)
        {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
    }
    let _ = child.wait();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_status_mapping() {
        assert_eq!(Outcome::from_code(Some(33)), Outcome::GuestSuccess);
        assert_eq!(Outcome::from_code(Some(35)), Outcome::GuestFailure);
        assert_eq!(Outcome::from_code(Some(0)), Outcome::NoVerdict);
        assert_eq!(
            Outcome::from_code(Some(1)),
            Outcome::QemuError { code: Some(1) }
        );
        assert_eq!(Outcome::from_code(None), Outcome::QemuError { code: None });
        let codes: Vec<i32> = [
            Outcome::GuestSuccess,
            Outcome::GuestFailure,
            Outcome::NoVerdict,
            Outcome::QemuError { code: Some(1) },
            Outcome::TimedOut(Duration::from_secs(5)),
        ]
        .iter()
        .map(Outcome::exit_code)
        .collect();
        assert_eq!(codes, [0, 1, 2, 3, 124]);
        assert!(Outcome::NoVerdict.to_string().contains("triple fault"));
        assert!(
            Outcome::TimedOut(Duration::from_secs(5))
                .to_string()
                .contains("5 s")
        );
    }

    #[test]
    fn command_line() {
        let extra = ["-d".to_string(), "int".to_string()];
        let m = Machine {
            smp: 4,
            memory: "256M",
            ovmf_code: Path::new("/fw/CODE.fd"),
            ovmf_vars: Path::new("/run,1/VARS.fd"),
            boot_dir: Path::new("/run/boot"),
            monitor_on_stdio: false,
            gdb: true,
            extra: &extra,
        };
        let args = m.args().join(" ");
        for part in [
            "-machine q35 -cpu max -accel tcg,thread=multi",
            "-smp 4 -m 256M",
            "-nic none -no-reboot -display none",
            "-serial stdio -monitor none",
            "if=pflash,format=raw,unit=0,readonly=on,file=/fw/CODE.fd",
            "if=pflash,format=raw,unit=1,file=/run,,1/VARS.fd",
            "-device isa-debug-exit,iobase=0xf4,iosize=0x04",
            "-drive format=raw,file=fat:rw:/run/boot",
        ] {
            assert!(args.contains(part), "`{part}` missing from: {args}");
        }
        assert!(args.ends_with("-s -S -d int"), "{args}");
        let m = Machine {
            monitor_on_stdio: true,
            gdb: false,
            extra: &[],
            ..m
        };
        assert!(m.args().join(" ").contains("-serial mon:stdio"));
    }

    fn shell(script: &str) -> Command {
        let mut c = Command::new("sh");
        c.args(["-c", script]);
        c
    }

    #[test]
    fn streams_clean_lines_and_maps_the_exit() {
        let mut lines = Vec::new();
        let outcome = run(
            shell("printf '\\033[2Jhello\\r\\nworld'; echo oops >&2; exit 33"),
            false,
            None,
            |e| {
                match e {
                    Event::Serial(l) => lines.push(format!("out:{l}")),
                    Event::Stderr(l) => lines.push(format!("err:{l}")),
                    Event::Tick => {}
                }
                Flow::Continue
            },
        )
        .unwrap();
        assert_eq!(outcome, Outcome::GuestSuccess);
        lines.sort();
        assert_eq!(lines, ["err:oops", "out:hello", "out:world"]);
    }

    #[test]
    fn a_timeout_stops_a_hung_process() {
        let start = Instant::now();
        let outcome = run(
            shell("echo started; exec sleep 30"),
            false,
            Some(Duration::from_secs(1)),
            |_| Flow::Continue,
        )
        .unwrap();
        assert_eq!(outcome, Outcome::TimedOut(Duration::from_secs(1)));
        assert!(start.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn the_caller_can_stop_the_run() {
        let outcome = run(
            shell("echo 'kernel panic'; exec sleep 30"),
            false,
            None,
            |e| match e {
                Event::Serial(l) if l.contains("panic") => Flow::Stop("panicked".into()),
                _ => Flow::Continue,
            },
        )
        .unwrap();
        assert_eq!(outcome, Outcome::Stopped("panicked".into()));
    }
}

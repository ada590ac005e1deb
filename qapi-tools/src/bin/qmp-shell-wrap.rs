//! qmp-shell-wrap: start QEMU with a private QMP socket and attach
//! `qmp-shell` to it.
//!
//! ```text
//! qmp-shell-wrap [qmp-shell options] [--] QEMU-PROGRAM [QEMU-ARGS…]
//! ```
//!
//! The socket lives in a fresh temporary folder (removed at the end);
//! QEMU gets `-qmp unix:SOCKET,server=on,wait=off` added, its standard
//! input closed and its output on the terminal.  When the shell ends
//! (Ctrl-D), QEMU is stopped (SIGTERM, then killed after 5 s); when QEMU
//! stops (`quit`, a crash), the shell ends with a message.  The exit
//! code is the shell's.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, ExitStatus, Stdio};
use std::time::{Duration, Instant};

const USAGE: &str =
    "usage: qmp-shell-wrap [-H] [-p] [-v] [--history FILE] [--] QEMU-PROGRAM [ARGS…]";

/// The temporary folder, removed however the program ends.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn temp_dir() -> std::io::Result<TempDir> {
    let base = std::env::temp_dir();
    for n in 0..100u32 {
        let dir = base.join(format!("qmp-shell-wrap-{}-{n}", std::process::id()));
        match std::fs::create_dir(&dir) {
            Ok(()) => {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
                return Ok(TempDir(dir));
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other("no free temporary folder name"))
}

/// Stop QEMU: SIGTERM (it shuts down cleanly), then SIGKILL after 5 s.
fn stop(child: &mut Child) -> Option<ExitStatus> {
    if let Ok(Some(s)) = child.try_wait() {
        return Some(s);
    }
    // SAFETY: signalling our own child, whose pid is still ours (not
    // yet waited for).
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Ok(Some(s)) = child.try_wait() {
            return Some(s);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    child.wait().ok()
}

/// The `qmp-shell` installed beside this program.
fn shell_program() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join("qmp-shell")))
        .filter(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("qmp-shell"))
}

fn wait_for_socket(sock: &Path, qemu: &mut Child) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !sock.exists() {
        if let Ok(Some(s)) = qemu.try_wait() {
            return Err(format!("QEMU ended before opening its monitor ({s})"));
        }
        if Instant::now() > deadline {
            return Err("QEMU did not open its monitor socket within 30 s".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

fn main() -> ExitCode {
    let mut shell_args: Vec<String> = Vec::new();
    let mut it = std::env::args().skip(1).peekable();
    while let Some(a) = it.peek() {
        match a.as_str() {
            "--" => {
                it.next();
                break;
            }
            "-h" | "--help" => {
                eprintln!("{USAGE}");
                return ExitCode::from(2);
            }
            "--history" => {
                shell_args.push(it.next().unwrap_or_default());
                match it.next() {
                    Some(f) => shell_args.push(f),
                    None => {
                        eprintln!("{USAGE}");
                        return ExitCode::from(2);
                    }
                }
            }
            s if s.starts_with('-') => shell_args.push(it.next().unwrap_or_default()),
            _ => break,
        }
    }
    let qemu_cmd: Vec<String> = it.collect();
    let Some((program, qemu_args)) = qemu_cmd.split_first() else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let dir = match temp_dir() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("qmp-shell-wrap: cannot make a temporary folder: {e}");
            return ExitCode::FAILURE;
        }
    };
    let sock = dir.0.join("qmp.sock");
    let mut qemu = match Command::new(program)
        .args(qemu_args)
        .arg("-qmp")
        .arg(format!("unix:{},server=on,wait=off", sock.display()))
        .stdin(Stdio::null())
        // Its own process group: Ctrl-C at the terminal is the shell's.
        .process_group(0)
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("qmp-shell-wrap: cannot start {program}: {e}");
            return ExitCode::FAILURE;
        }
    };
    eprintln!("qmp-shell-wrap: started {program} (pid {})", qemu.id());
    if let Err(e) = wait_for_socket(&sock, &mut qemu) {
        eprintln!("qmp-shell-wrap: {e}");
        stop(&mut qemu);
        return ExitCode::FAILURE;
    }
    let mut shell = match Command::new(shell_program())
        .args(&shell_args)
        .arg(&sock)
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("qmp-shell-wrap: cannot start qmp-shell: {e}");
            stop(&mut qemu);
            return ExitCode::FAILURE;
        }
    };
    // Ctrl-C is the shell's to handle (it drops the line being typed):
    // it must not end this program and leave QEMU running.
    // SAFETY: setting a signal's disposition to "ignore".
    unsafe {
        libc::signal(libc::SIGINT, libc::SIG_IGN);
    }
    // Whichever ends first ends the other.
    let code = loop {
        if let Ok(Some(s)) = shell.try_wait() {
            if !s.success() {
                // The shell may have ended because QEMU is ending: give
                // it a moment to do so by itself.
                let deadline = Instant::now() + Duration::from_secs(2);
                while Instant::now() < deadline {
                    if let Ok(Some(q)) = qemu.try_wait() {
                        eprintln!("qmp-shell-wrap: QEMU ended ({q}); the shell ended with it");
                        return ExitCode::from(s.code().unwrap_or(1).clamp(0, 255) as u8);
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
            let q = stop(&mut qemu);
            eprintln!(
                "qmp-shell-wrap: the shell ended; QEMU stopped ({})",
                q.map_or("status unknown".into(), |s| s.to_string())
            );
            break s.code().unwrap_or(1);
        }
        if let Ok(Some(q)) = qemu.try_wait() {
            // The shell sees the connection close and ends by itself.
            let deadline = Instant::now() + Duration::from_secs(5);
            let s = loop {
                if let Ok(Some(s)) = shell.try_wait() {
                    break s.code().unwrap_or(1);
                }
                if Instant::now() > deadline {
                    let _ = shell.kill();
                    let _ = shell.wait();
                    break 1;
                }
                std::thread::sleep(Duration::from_millis(20));
            };
            eprintln!("qmp-shell-wrap: QEMU ended ({q}); the shell ended with it");
            break s;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    drop(dir);
    ExitCode::from(code.clamp(0, 255) as u8)
}

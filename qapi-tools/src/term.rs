//! The terminal's settings, saved and put back: a line editor leaves the
//! terminal raw while it reads a line, and a tool that must end then
//! (the server went away) puts it back as it found it.

/// Standard input's terminal settings.
#[derive(Clone, Copy)]
pub struct Saved(libc::termios);

impl Saved {
    /// The settings now, when standard input is a terminal.
    pub fn stdin() -> Option<Saved> {
        let mut t = std::mem::MaybeUninit::<libc::termios>::uninit();
        // SAFETY: tcgetattr fills the struct when it returns 0.
        if unsafe { libc::tcgetattr(0, t.as_mut_ptr()) } == 0 {
            Some(Saved(unsafe { t.assume_init() }))
        } else {
            None
        }
    }

    /// Put them back.
    pub fn restore(&self) {
        // SAFETY: a valid termios read by tcgetattr.
        unsafe {
            libc::tcsetattr(0, libc::TCSANOW, &self.0);
        }
    }
}

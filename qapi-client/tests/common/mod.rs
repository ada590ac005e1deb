//! Helpers shared by the fake-server tests.

#![allow(dead_code)]

use std::os::unix::net::UnixListener;
use std::path::PathBuf;

pub mod rng;

/// A listening Unix socket in a fresh temporary folder named after
/// `prefix`; the socket's path is the second value.
pub fn listen(prefix: &str) -> (UnixListener, PathBuf) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("s");
    let listener = UnixListener::bind(&path).unwrap();
    (listener, path)
}

//! Bindings generated for QEMU's real schemas, compiled with warnings
//! denied. `cargo xtask test` also runs clippy and rustdoc on this crate
//! with warnings denied, and its doctests (there must be none).
//!
//! QEMU 10.0.2's and 7.2's sources come from the network, so the
//! bindings are generated only with `QAPI_LIVE=1` (the live tier, which
//! `cargo xtask test` asks for); without it this crate is empty.
#![deny(warnings)]
#![deny(missing_docs)]

/// QEMU 10.0.2 (documentation read in lenient mode).
#[cfg(qapi_live)]
pub mod v10_0_2 {
    /// The QMP schema.
    pub mod qmp {
        include!(concat!(env!("OUT_DIR"), "/v10_0_2/qmp.rs"));
    }
    /// The guest agent's schema.
    pub mod qga {
        include!(concat!(env!("OUT_DIR"), "/v10_0_2/qga.rs"));
    }
    /// The storage daemon's schema.
    pub mod storage_daemon {
        include!(concat!(env!("OUT_DIR"), "/v10_0_2/storage_daemon.rs"));
    }
}

/// QEMU 7.2 (documentation read in lenient mode).
#[cfg(qapi_live)]
pub mod v7_2 {
    /// The QMP schema.
    pub mod qmp {
        include!(concat!(env!("OUT_DIR"), "/v7_2/qmp.rs"));
    }
    /// The guest agent's schema.
    pub mod qga {
        include!(concat!(env!("OUT_DIR"), "/v7_2/qga.rs"));
    }
    /// The storage daemon's schema.
    pub mod storage_daemon {
        include!(concat!(env!("OUT_DIR"), "/v7_2/storage_daemon.rs"));
    }
}

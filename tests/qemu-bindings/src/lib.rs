//! Bindings generated for QEMU's real schemas, compiled with warnings
//! denied. `cargo xtask test` also runs clippy and rustdoc on this crate
//! with warnings denied, and its doctests (there must be none).
#![deny(warnings)]
#![deny(missing_docs)]

/// QEMU 10.0.2 (documentation read in lenient mode).
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

use std::time::Duration;

use qapi_types::blocking::Qmp;
use qapi_types::qmp::commands::{Migrate, MigrateSetCapabilities};
use qapi_types::qmp::events::Migration;
use qapi_types::qmp::{MigrationCapability, MigrationCapabilityStatus, MigrationStatus};

/// Migrates the VM to the file `path` (its saved state) and waits for
/// the end: returns `Completed`, or `Failed`.
pub fn migrate_to_file(qmp: &Qmp, path: &str) -> qapi_types::Result<MigrationStatus> {
    // QEMU sends MIGRATION events only once the `events` capability is on.
    let events_on = MigrationCapabilityStatus::new(MigrationCapability::Events, true);
    qmp.execute(&MigrateSetCapabilities::new(vec![events_on]))?;
    let migration = qmp.subscribe_filter(|e| e.name == "MIGRATION");
    qmp.execute(&Migrate::default().uri(format!("file:{path}")))?;
    let end = migration.wait_event::<Migration>(Duration::from_secs(120), |m| {
        use MigrationStatus::{Completed, Failed};
        matches!(m.status, Completed | Failed)
    })?;
    println!("migration: {}", end.status);
    Ok(end.status)
}

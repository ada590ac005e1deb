use std::time::Duration;

use qapi_types::blocking::Qmp;
use qapi_types::qmp::commands::BlockdevMirror;
use qapi_types::qmp::events::JobStatusChange;
use qapi_types::qmp::{JobStatus, MirrorSyncMode};
use qapi_types::EventItem;

/// Mirrors the node `from` to the node `to` (a new one, added as in
/// story 2), completes the job, prints each status its events report
/// and returns them.
pub fn mirror(qmp: &Qmp, from: &str, to: &str) -> qapi_types::Result<Vec<JobStatus>> {
    // Subscribed before the job starts, so no event is missed.
    let events = qmp.subscribe_filter(|e| e.name == "JOB_STATUS_CHANGE");
    let mirror = BlockdevMirror::new(from, to, MirrorSyncMode::Full).job_id("mirror0");
    // `run_job` sends job-complete once the copy is `ready`, waits for
    // `concluded` (a failure is Error::Job, with QEMU's message), then
    // dismisses the job.
    qmp.run_job(&mirror, Some(Duration::from_secs(60)))?;
    let mut seen = Vec::new();
    while let Some(EventItem::Event(raw)) = events.try_recv() {
        if let Some(Ok(e)) = raw.decode::<JobStatusChange>() {
            if e.id == "mirror0" {
                println!("mirror0: {}", e.status);
                seen.push(e.status);
            }
        }
    }
    Ok(seen)
}

//! Waiting for what QEMU does in the background, shared by both
//! clients: which events to listen for, what they mean, what to send
//! next.  No I/O happens here; `blocking.rs` and `tokio.rs` drive it.
//!
//! Every use of the generated bindings by the clients is in this file.

use serde_json::Value;

use crate::error::Error;
use crate::proto::RawEvent;
use qapi_qemu::qmp::{commands, events, JobInfo, JobStatus};

fn str_member<'a>(ev: &'a RawEvent, key: &str) -> Option<&'a str> {
    ev.data.get(key).and_then(Value::as_str)
}

/// The events of the job `id`: its status changes and, for block jobs,
/// their completion (which carries the error when QEMU dismisses the
/// job by itself).
pub(crate) fn job_filter(id: String) -> impl Fn(&RawEvent) -> bool + Send + Sync + 'static {
    move |ev| match ev.name.as_str() {
        "JOB_STATUS_CHANGE" => str_member(ev, "id") == Some(&id),
        "BLOCK_JOB_COMPLETED" | "BLOCK_JOB_CANCELLED" => str_member(ev, "device") == Some(&id),
        _ => false,
    }
}

/// `DEVICE_DELETED` for the device `id` (its qdev id or its QOM path).
pub(crate) fn device_deleted_filter(
    id: String,
) -> impl Fn(&RawEvent) -> bool + Send + Sync + 'static {
    move |ev| {
        ev.name == "DEVICE_DELETED"
            && (str_member(ev, "device") == Some(&id) || str_member(ev, "path") == Some(&id))
    }
}

/// The id of the job a command starts: its `job-id`, or for block jobs
/// without one the `device` QEMU names the job after.
pub(crate) fn job_id_of<C: crate::Command>(command: &C) -> Result<String, Error> {
    let args = serde_json::to_value(command).map_err(Error::Encode)?;
    ["job-id", "device"]
        .iter()
        .find_map(|k| args.get(k).and_then(Value::as_str))
        .map(str::to_string)
        .ok_or_else(|| {
            Error::Unsupported(
                format!(
                    "{} has no job-id (nor device) to follow the job by",
                    C::NAME
                )
                .into(),
            )
        })
}

/// A job being followed to its end.
pub(crate) struct JobWatch {
    pub(crate) id: String,
    /// The error of `BLOCK_JOB_COMPLETED`, or `cancelled`.
    completion: Option<String>,
    completed: bool,
    /// `job-complete` was sent.
    completing: bool,
}

/// What the driver does next.
pub(crate) enum JobStep {
    /// Wait for the next event.
    Wait,
    /// The job is ready (a mirror, an active commit): send this to let
    /// it finish.
    Complete(commands::JobComplete),
    /// It concluded: ask `query-jobs` for its error, then
    /// [`JobWatch::conclude`].
    Concluded,
}

impl JobWatch {
    pub(crate) fn new(id: String) -> JobWatch {
        JobWatch {
            id,
            completion: None,
            completed: false,
            completing: false,
        }
    }

    /// One of the job's events.
    pub(crate) fn event(&mut self, ev: &RawEvent) -> Result<JobStep, Error> {
        match ev.name.as_str() {
            "BLOCK_JOB_COMPLETED" => {
                self.completed = true;
                self.completion = str_member(ev, "error").map(str::to_string);
                Ok(JobStep::Wait)
            }
            "BLOCK_JOB_CANCELLED" => {
                self.completed = true;
                self.completion = Some("cancelled".into());
                Ok(JobStep::Wait)
            }
            _ => match ev.decode::<events::JobStatusChange>() {
                Some(Ok(change)) => Ok(self.status(&change.status)),
                Some(Err(e)) => Err(e),
                None => Ok(JobStep::Wait),
            },
        }
    }

    /// The job's status, from an event or from `query-jobs` (after the
    /// subscriber fell behind).
    pub(crate) fn status(&mut self, status: &JobStatus) -> JobStep {
        match status {
            JobStatus::Ready if !self.completing => {
                self.completing = true;
                JobStep::Complete(commands::JobComplete {
                    id: self.id.clone(),
                })
            }
            JobStatus::Concluded | JobStatus::Null => JobStep::Concluded,
            _ => JobStep::Wait,
        }
    }

    /// Where the job stands after events were dropped: from `query-jobs`
    /// (absent: it ended and QEMU dismissed it).
    pub(crate) fn caught_up(&mut self, jobs: &[JobInfo]) -> JobStep {
        match jobs.iter().find(|j| j.id == self.id) {
            Some(j) => self.status(&j.status),
            None => JobStep::Concluded,
        }
    }

    /// The job concluded and `jobs` is what `query-jobs` said next: the
    /// command that dismisses it, if it is still there (a block job
    /// started with `auto-dismiss` on is gone already), and how it
    /// ended.
    pub(crate) fn conclude(
        self,
        jobs: &[JobInfo],
    ) -> (Option<commands::JobDismiss>, Result<(), Error>) {
        let (dismiss, error) = match jobs.iter().find(|j| j.id == self.id) {
            Some(j) => (
                Some(commands::JobDismiss {
                    id: self.id.clone(),
                }),
                j.error.clone(),
            ),
            None if self.completed => (None, self.completion),
            None => (
                None,
                Some(
                    "it ended and was dismissed before its outcome could be read \
                     (no BLOCK_JOB_COMPLETED seen)"
                        .into(),
                ),
            ),
        };
        let result = match error {
            Some(message) => Err(Error::Job {
                id: self.id,
                message,
            }),
            None => Ok(()),
        };
        (dismiss, result)
    }
}

/// `query-jobs`.
pub(crate) fn query_jobs() -> commands::QueryJobs {
    commands::QueryJobs {}
}

/// `device_del` of `id`.
pub(crate) fn device_del(id: &str) -> commands::DeviceDel {
    commands::DeviceDel { id: id.to_string() }
}

/// `add-fd`.
pub(crate) fn add_fd(fdset_id: Option<i64>, opaque: Option<&str>) -> commands::AddFd {
    commands::AddFd {
        fdset_id,
        opaque: opaque.map(str::to_string),
    }
}

/// `remove-fd` of a whole fd set.
pub(crate) fn remove_fdset(fdset_id: i64) -> commands::RemoveFd {
    commands::RemoveFd { fdset_id, fd: None }
}

/// What `add-fd` answered: the fd set and the descriptor's number in
/// QEMU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FdSetInfo {
    /// The fd set's id (`/dev/fdset/ID` in file names).
    pub fdset_id: i64,
    /// The descriptor's number inside QEMU.
    pub fd: i64,
}

impl From<qapi_qemu::qmp::AddfdInfo> for FdSetInfo {
    fn from(i: qapi_qemu::qmp::AddfdInfo) -> FdSetInfo {
        FdSetInfo {
            fdset_id: i.fdset_id,
            fd: i.fd,
        }
    }
}

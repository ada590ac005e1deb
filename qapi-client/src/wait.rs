//! Waiting for what QEMU does in the background, shared by both
//! clients: which events to listen for, what they mean, what to send
//! next.  No I/O happens here: each wait is a state machine ([`Wait`])
//! that the drivers' one loop (`wait` in `api.rs`) runs to its end.
//!
//! Every use of the generated bindings by the clients is in this file.

use serde_json::Value;

use std::time::Duration;

use crate::error::{Error, Result};
use crate::proto::{EventFilter, EventItem, RawEvent, Returned};
use qapi_qemu::qmp::{commands, events, JobInfo, JobStatus};

fn str_member<'a>(ev: &'a RawEvent, key: &str) -> Option<&'a str> {
    ev.data.get(key).and_then(Value::as_str)
}

/// The events of the job `id`: its status changes and, for block jobs,
/// their completion (which carries the error when QEMU dismisses the
/// job by itself).
fn job_filter(id: String) -> impl Fn(&RawEvent) -> bool + Send + Sync + 'static {
    move |ev| match ev.name.as_str() {
        "JOB_STATUS_CHANGE" => str_member(ev, "id") == Some(&id),
        "BLOCK_JOB_COMPLETED" | "BLOCK_JOB_CANCELLED" => str_member(ev, "device") == Some(&id),
        _ => false,
    }
}

/// `DEVICE_DELETED` for the device `id` (its qdev id or its QOM path).
fn device_deleted_filter(id: String) -> impl Fn(&RawEvent) -> bool + Send + Sync + 'static {
    move |ev| {
        ev.name == "DEVICE_DELETED"
            && (str_member(ev, "device") == Some(&id) || str_member(ev, "path") == Some(&id))
    }
}

/// The id of the job a command starts (`args`, its arguments): its
/// `job-id`, or for block jobs without one the `device` QEMU names the
/// job after.
fn job_id_of(args: &Value, name: &str) -> Result<String> {
    ["job-id", "device"]
        .iter()
        .find_map(|k| args.get(k).and_then(Value::as_str))
        .map(str::to_string)
        .ok_or_else(|| {
            Error::Unsupported(
                format!("{name} has no job-id (nor device) to follow the job by").into(),
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
        &mut self,
        jobs: &[JobInfo],
    ) -> (Option<commands::JobDismiss>, Result<(), Error>) {
        let (dismiss, error) = match jobs.iter().find(|j| j.id == self.id) {
            Some(j) => (
                Some(commands::JobDismiss {
                    id: self.id.clone(),
                }),
                j.error.clone(),
            ),
            None if self.completed => (None, self.completion.take()),
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
                id: self.id.clone(),
                message,
            }),
            None => Ok(()),
        };
        (dismiss, result)
    }
}

/// What a wait does next.
pub(crate) enum Step {
    /// Send this command (by name, checked and traced as any other) and
    /// give its reply to [`Wait::replied`].
    Send(&'static str, Value),
    /// Give the next event (or loss) to [`Wait::received`].
    Recv,
    /// The wait is over.
    Done,
}

/// A wait, as a state machine: what to subscribe to (before anything is
/// sent, so no event can come first), the command that starts it, and
/// what each reply and event means.
pub(crate) trait Wait {
    fn filter(&self) -> EventFilter;
    fn start(&mut self) -> Step;
    fn replied(&mut self, reply: Returned, strict: Option<bool>) -> Result<Step>;
    fn received(&mut self, item: EventItem) -> Result<Step>;
    /// The error when `after` passed.
    fn timed_out(&self, after: Duration) -> Error;
}

/// What the last command a [`JobWait`] sent was for.
enum Sent {
    Start,
    Complete,
    /// `query-jobs` after events were lost.
    CatchUp,
    /// `query-jobs` after the job concluded.
    Conclude,
    /// `job-dismiss`, with how the job ended.
    Dismiss(Result<()>),
}

/// `run_job`: a job followed from its start to its end.
pub(crate) struct JobWait {
    start: Option<(&'static str, Value)>,
    watch: JobWatch,
    sent: Sent,
}

impl JobWait {
    pub(crate) fn new<C: crate::Command>(start: &C) -> Result<JobWait> {
        let args = serde_json::to_value(start).map_err(Error::Encode)?;
        let id = job_id_of(&args, C::NAME)?;
        Ok(JobWait {
            start: Some((C::NAME, args)),
            watch: JobWatch::new(id),
            sent: Sent::Start,
        })
    }

    fn send(&mut self, sent: Sent, name: &'static str, args: Value) -> Step {
        self.sent = sent;
        Step::Send(name, args)
    }

    fn step(&mut self, step: JobStep) -> Step {
        match step {
            JobStep::Wait => Step::Recv,
            JobStep::Complete(c) => self.send(Sent::Complete, "job-complete", json(&c)),
            JobStep::Concluded => self.send(Sent::Conclude, "query-jobs", Value::Null),
        }
    }
}

/// A command's arguments as JSON (the bindings' own types always
/// serialize).
fn json(command: &impl serde::Serialize) -> Value {
    serde_json::to_value(command).unwrap_or(Value::Null)
}

impl Wait for JobWait {
    fn filter(&self) -> EventFilter {
        std::sync::Arc::new(job_filter(self.watch.id.clone()))
    }

    fn start(&mut self) -> Step {
        let (name, args) = self.start.take().unwrap_or(("query-jobs", Value::Null));
        self.send(Sent::Start, name, args)
    }

    fn replied(&mut self, reply: Returned, strict: Option<bool>) -> Result<Step> {
        let jobs = |reply| crate::proto::decode_return::<commands::QueryJobs>(reply, strict);
        Ok(match std::mem::replace(&mut self.sent, Sent::Start) {
            Sent::Start | Sent::Complete => Step::Recv,
            Sent::CatchUp => {
                let step = self.watch.caught_up(&jobs(reply)?);
                self.step(step)
            }
            Sent::Conclude => match self.watch.conclude(&jobs(reply)?) {
                (Some(dismiss), result) => {
                    self.send(Sent::Dismiss(result), "job-dismiss", json(&dismiss))
                }
                (None, result) => result.map(|()| Step::Done)?,
            },
            Sent::Dismiss(result) => result.map(|()| Step::Done)?,
        })
    }

    fn received(&mut self, item: EventItem) -> Result<Step> {
        match item {
            EventItem::Event(ev) => {
                let step = self.watch.event(&ev)?;
                Ok(self.step(step))
            }
            EventItem::Lagged(_) => Ok(self.send(Sent::CatchUp, "query-jobs", Value::Null)),
        }
    }

    fn timed_out(&self, after: Duration) -> Error {
        Error::Timeout {
            what: format!("job {}", self.watch.id),
            after,
        }
    }
}

/// `device_del`: the command, then the device's `DEVICE_DELETED`.
pub(crate) struct DeviceWait {
    id: String,
}

impl DeviceWait {
    pub(crate) fn new(id: &str) -> DeviceWait {
        DeviceWait { id: id.to_string() }
    }
}

impl Wait for DeviceWait {
    fn filter(&self) -> EventFilter {
        std::sync::Arc::new(device_deleted_filter(self.id.clone()))
    }

    fn start(&mut self) -> Step {
        let del = commands::DeviceDel {
            id: self.id.clone(),
        };
        Step::Send("device_del", json(&del))
    }

    fn replied(&mut self, _: Returned, _: Option<bool>) -> Result<Step> {
        Ok(Step::Recv)
    }

    fn received(&mut self, item: EventItem) -> Result<Step> {
        match item {
            EventItem::Event(_) => Ok(Step::Done),
            EventItem::Lagged(count) => Err(Error::EventsLost { count }),
        }
    }

    fn timed_out(&self, after: Duration) -> Error {
        Error::Timeout {
            what: format!("DEVICE_DELETED of {}", self.id),
            after,
        }
    }
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

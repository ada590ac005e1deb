//! The clients against QEMU 7.2's `qemu-system-x86_64` and `qemu-ga`
//! (Debian's packages, unpacked under target/qemu-7.2 by
//! `qapi_tests::qemu_bin`): STOP/RESUME events, HMP passthrough, an
//! out-of-band command, fd passing with `getfd`, and the guest agent's
//! sync, info and a `success-response: false` command.

use std::os::fd::AsFd;
use std::time::Duration;

use qapi_tests::live::Process;
use qapi_tests::qemu_bin::{ensure_qemu72, Qemu72};
use qapi_types::blocking::{GuestAgent, Qmp};
use qapi_types::qmp::commands::{Closefd, Cont, Getfd, QueryStatus, QueryYank, Stop};
use qapi_types::qmp::events::Event;
use qapi_types::qmp::RunState;
use qapi_types::{Error, EventItem, Options};

fn qemu72() -> Qemu72 {
    ensure_qemu72().unwrap_or_else(|e| panic!("QEMU 7.2 binaries: {e}"))
}

fn system(machine: &str) -> Process {
    qemu72().spawn_system(machine)
}

fn next_event(sub: &qapi_types::blocking::Subscription) -> Event {
    match sub.recv_timeout(Duration::from_secs(10)).unwrap() {
        EventItem::Event(raw) => raw.event::<Event>().expect("a known event decodes"),
        EventItem::Lagged(n) => panic!("lagged by {n}"),
    }
}

#[test]
fn stop_and_cont_give_typed_events() {
    qapi_tests::require_live!();
    for machine in ["none", "pc"] {
        let d = system(machine);
        let qmp = Qmp::connect_unix(d.sock()).unwrap();
        assert_eq!(qmp.greeting().version.0, 7, "{}", qmp.greeting());
        let sub = qmp.subscribe();
        qmp.execute(&Stop {}).unwrap();
        assert!(matches!(next_event(&sub), Event::Stop(_)));
        assert_eq!(
            qmp.execute(&QueryStatus {}).unwrap().status,
            RunState::Paused
        );
        qmp.execute(&Cont {}).unwrap();
        assert!(matches!(next_event(&sub), Event::Resume(_)));
        assert!(qmp.execute(&QueryStatus {}).unwrap().running);
    }
}

#[test]
fn human_monitor_passthrough() {
    qapi_tests::require_live!();
    let d = system("none");
    let qmp = Qmp::connect_unix(d.sock()).unwrap();
    let text = qmp.human_command("info version").unwrap();
    assert!(text.starts_with("7.2."), "{text:?}");
    let text = qmp.human_command("no-such-hmp-command").unwrap();
    assert!(text.contains("unknown command"), "{text:?}");
}

#[test]
fn an_out_of_band_command() {
    qapi_tests::require_live!();
    let d = system("none");
    let qmp = Qmp::connect_unix(d.sock()).unwrap();
    assert!(qmp.oob());
    // query-yank is allow-oob; its reply decodes into its type.
    let _instances: Vec<qapi_types::qmp::YankInstance> = qmp.execute_oob(&QueryYank {}).unwrap();
    // Refused before sending: not negotiated, or not allowed.  (QEMU
    // serves one monitor client at a time: close the first.)
    drop(qmp);
    let no_oob = Qmp::connect_unix_with(d.sock(), &Options::new().oob(false)).unwrap();
    assert!(matches!(
        no_oob.execute_oob(&QueryYank {}),
        Err(Error::Unsupported(_))
    ));
    assert!(matches!(
        no_oob.execute_oob(&Stop {}),
        Err(Error::Unsupported(_))
    ));
}

#[test]
fn file_descriptors_pass_with_getfd() {
    qapi_tests::require_live!();
    let d = system("none");
    let qmp = Qmp::connect_unix(d.sock()).unwrap();
    let file = std::fs::File::create(d.dir.join("passed")).unwrap();
    qmp.execute_with_fds(
        &Getfd {
            fdname: "mine".into(),
        },
        &[file.as_fd()],
    )
    .unwrap();
    // QEMU has it: closing it by name works once, then it is gone.
    qmp.execute(&Closefd {
        fdname: "mine".into(),
    })
    .unwrap();
    match qmp.execute(&Closefd {
        fdname: "mine".into(),
    }) {
        Err(Error::Qmp(e)) => assert!(e.desc.contains("mine"), "{e}"),
        other => panic!("{other:?}"),
    }
    // Without a descriptor, getfd fails in QEMU.
    assert!(matches!(
        qmp.execute(&Getfd {
            fdname: "none".into()
        }),
        Err(Error::Qmp(_))
    ));
}

#[tokio::test]
async fn tokio_client_with_events_hmp_and_fds() {
    qapi_tests::require_live!();
    let d = system("none");
    let qmp = qapi_types::tokio::Qmp::connect_unix(d.sock())
        .await
        .unwrap();
    let sub = qmp.subscribe_filter(|e| e.name == "STOP" || e.name == "RESUME");
    qmp.execute(&Stop {}).await.unwrap();
    qmp.execute(&Cont {}).await.unwrap();
    let mut names = Vec::new();
    for _ in 0..2 {
        match sub.recv_timeout(Duration::from_secs(10)).await.unwrap() {
            EventItem::Event(e) => names.push(e.name),
            EventItem::Lagged(n) => panic!("lagged by {n}"),
        }
    }
    assert_eq!(names, ["STOP", "RESUME"]);
    let text = qmp.human_command("info status").await.unwrap();
    assert!(text.contains("running"), "{text:?}");
    let file = std::fs::File::create(d.dir.join("passed")).unwrap();
    qmp.execute_with_fds(&Getfd { fdname: "t".into() }, &[file.as_fd()])
        .await
        .unwrap();
    qmp.execute(&Closefd { fdname: "t".into() }).await.unwrap();
    qmp.execute_oob(&QueryYank {}).await.unwrap();
}

fn agent() -> Process {
    qapi_tests::live::guest_agent72()
}

#[test]
fn guest_agent_sync_info_and_no_reply_commands() {
    qapi_tests::require_live!();
    use qapi_types::qga::commands::{GuestGetHostName, GuestInfo, GuestPing, GuestShutdown};
    let d = agent();
    let ga = GuestAgent::connect_unix(d.sock()).unwrap();
    ga.sync().unwrap();
    let info = ga.execute(&GuestInfo {}).unwrap();
    assert!(info.version.starts_with("7.2"), "{}", info.version);
    assert!(info
        .supported_commands
        .iter()
        .any(|c| c.name == "guest-ping" && c.enabled));
    ga.execute(&GuestPing {}).unwrap();
    // Sent, not waited for: returns at once even though the agent
    // answers with an error (the command is disabled here).
    let started = std::time::Instant::now();
    ga.execute(&GuestShutdown { mode: None }).unwrap();
    assert!(started.elapsed() < Duration::from_secs(1));
    // The stray error is skipped by the resync before the next command.
    let host = ga.execute(&GuestGetHostName {}).unwrap();
    assert!(!host.host_name.is_empty());
    assert!(ga.execute(&GuestInfo {}).is_ok());
    match ga.execute_raw("no-such-command", None) {
        Err(Error::Qmp(e)) => assert_eq!(e.class, "CommandNotFound", "{e}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn tokio_guest_agent() {
    qapi_tests::require_live!();
    use qapi_types::qga::commands::{GuestInfo, GuestShutdown};
    let d = agent();
    let ga = qapi_types::tokio::GuestAgent::connect_unix(d.sock())
        .await
        .unwrap();
    let info = ga.execute(&GuestInfo {}).await.unwrap();
    assert!(info.version.starts_with("7.2"), "{}", info.version);
    ga.execute(&GuestShutdown { mode: None }).await.unwrap();
    let info = ga.execute(&GuestInfo {}).await.unwrap();
    assert!(info.version.starts_with("7.2"));
}

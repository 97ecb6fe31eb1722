//! The runtime's edge path for a backend that hands out descriptors
//! ([`InputPort::edge_readers`], the Linux backend's way, so no edge thread runs): edges read
//! from the descriptor on the control loop's own reactor reach the loop, and a reader that
//! fails leaves the unit safe with the E-stop alarm raised.
//!
//! The descriptor is one end of a Unix socket pair standing in for a GPIO line request (the
//! real one needs the kernel's gpio-sim: the VM stage runs the daemon on it); the rest is the
//! real runtime on the simulated unit. Waits are bounded by a deadline, never asserted.

use coldspray_hal::sim::SimUnit;
use coldspray_hal::{EdgeReader, EdgeSink, HalError, Input, InputEdge, InputPort, Output};
use coldsprayd::api::Snapshot;
use coldsprayd::config::{Backend, Config};
use coldsprayd::model::alarm::AlarmKind;
use coldsprayd::runtime::{self, Daemon, Parts};
use std::collections::VecDeque;
use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Edges queued by the test; one byte on the socket per edge wakes the reader.
type Queue = Arc<Mutex<VecDeque<InputEdge>>>;

/// The simulated unit's inputs for levels, with edges only through a descriptor. Once the
/// reader has failed, `level` fails too (as the Linux backend's does).
struct DescriptorInputs {
    levels: Box<dyn InputPort>,
    reader: Option<SocketEdges>,
    failed: Arc<Mutex<Option<String>>>,
}

impl InputPort for DescriptorInputs {
    fn level(&mut self, input: Input) -> Result<bool, HalError> {
        if let Some(why) = self.failed.lock().unwrap().clone() {
            return Err(HalError::backend(input, why));
        }
        self.levels.level(input)
    }

    fn subscribe(&mut self, _: EdgeSink) -> Result<(), HalError> {
        Err(HalError::Unsupported("edges come from edge_readers".into()))
    }

    fn edge_readers(&mut self) -> Result<Option<Vec<Box<dyn EdgeReader>>>, HalError> {
        let reader = self.reader.take().expect("edge_readers called once");
        Ok(Some(vec![Box::new(reader)]))
    }
}

struct SocketEdges {
    socket: UnixStream,
    queue: Queue,
    failed: Arc<Mutex<Option<String>>>,
}

// SAFETY: `fd` is always the socket's descriptor, owned by the reader for its whole life.
unsafe impl EdgeReader for SocketEdges {
    fn fd(&self) -> BorrowedFd<'_> {
        self.socket.as_fd()
    }

    fn read_waiting(&mut self, sink: &mut dyn FnMut(InputEdge)) -> Result<(), HalError> {
        let mut buf = [0u8; 64];
        loop {
            match self.socket.read(&mut buf) {
                Ok(0) => {
                    let why = "edge source closed".to_string();
                    *self.failed.lock().unwrap() = Some(why.clone());
                    return Err(HalError::backend("test edges", why));
                }
                Ok(n) => {
                    for _ in 0..n {
                        if let Some(edge) = self.queue.lock().unwrap().pop_front() {
                            sink(edge);
                        }
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(HalError::backend("test edges", e)),
            }
        }
    }
}

/// The test's end: queues an edge and wakes the reader.
struct EdgeFeed {
    socket: UnixStream,
    queue: Queue,
    seqno: u64,
    sim: SimUnit,
}

impl EdgeFeed {
    fn send(&mut self, input: Input, level: bool) {
        use coldspray_hal::Clock;
        self.seqno += 1;
        let at = self.sim.clock().now();
        self.queue.lock().unwrap().push_back(InputEdge {
            input,
            level,
            at,
            seqno: self.seqno,
        });
        self.socket.write_all(&[1]).expect("wake the reader");
    }
}

fn start(dir: &std::path::Path) -> (Daemon, EdgeFeed) {
    let mut config = Config::default();
    config.unit.backend = Backend::Sim;
    config.unit.state_dir = Some(dir.to_path_buf());
    config.sim.initial_reservoir_c = 4.0;
    let sim = SimUnit::new(config.sim.clone());
    let mut board = sim.board();
    let (ours, theirs) = UnixStream::pair().expect("socket pair");
    ours.set_nonblocking(true).expect("nonblocking");
    let queue = Queue::default();
    let failed = Arc::new(Mutex::new(None));
    board.inputs = Box::new(DescriptorInputs {
        levels: board.inputs,
        reader: Some(SocketEdges {
            socket: ours,
            queue: queue.clone(),
            failed: failed.clone(),
        }),
        failed,
    });
    let store = coldsprayd::store::open(&config.store, &config.state_dir()).expect("store");
    let parts = Parts {
        board: Some(board),
        sim: Some(sim.clone()),
        store: Some(Arc::new(store)),
        store_error: None,
    };
    let daemon = runtime::start(&config, parts).expect("runtime starts");
    let feed = EdgeFeed {
        socket: theirs,
        queue,
        seqno: 0,
        sim,
    };
    (daemon, feed)
}

/// Waits (up to 20 s, wall time) for a snapshot that `ok` accepts; the last one seen.
async fn wait_for(daemon: &Daemon, what: &str, ok: impl Fn(&Snapshot) -> bool) -> Arc<Snapshot> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let s = daemon.handle.snapshot();
        if ok(&s) {
            return s;
        }
        assert!(Instant::now() < deadline, "{what}: last snapshot {s:#?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edges_read_on_the_loops_reactor_reach_the_loop() {
    let dir = tempfile::tempdir().unwrap();
    let (daemon, mut feed) = start(dir.path());
    // The laser's emission input is not re-read as a level: only the edge can tell the loop.
    assert!(!daemon.handle.snapshot().laser_on);
    feed.send(Input::LaserEmission, true);
    wait_for(&daemon, "laser on through the reader", |s| s.laser_on).await;
    feed.send(Input::LaserEmission, false);
    wait_for(&daemon, "laser off through the reader", |s| !s.laser_on).await;
    daemon.stop().await.expect("clean stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_edge_reader_leaves_the_unit_safe_with_the_estop_alarm() {
    let dir = tempfile::tempdir().unwrap();
    let (daemon, feed) = start(dir.path());
    wait_for(&daemon, "past start-up", |s| s.alarms.is_empty()).await;
    // The source closes: the reader fails, the port's levels fail with it, and the loop's
    // level re-read treats E-stop and water-low as asserted.
    drop(feed);
    let s = wait_for(&daemon, "E-stop alarm after the reader failed", |s| {
        s.alarms.iter().any(|a| a.kind == AlarmKind::Estop)
    })
    .await;
    // Every actuator off; the buzzer and the fault lamp announce the alarm.
    for (output, on) in Output::ALL.into_iter().zip(s.outputs) {
        assert!(
            !(output.is_actuator() && on),
            "{output} on: {:?}",
            s.outputs
        );
    }
    assert!(s.outputs[Output::LampFault.index()], "fault lamp off");
    daemon.stop().await.expect("clean stop");
}

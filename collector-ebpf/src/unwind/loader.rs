//! [`TableLoader`]: loads processes' unwind tables on a thread of its own, so compiling a large
//! file's call frame information (millions of rows for a compiler's shared library: seconds)
//! never holds up the sampler's polls. Loads and forgets are applied in the order they are
//! sent, each load quick at first ([`Load::Quick`]: large files left to frame pointers); the
//! full loads of processes that had large files wait until nothing else is queued, so a small
//! new process is never stuck behind a large one.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, TryRecvError, channel};
use std::thread::JoinHandle;

use crate::process::ProcessInfo;
use crate::unwind::UnwindTables;
use crate::unwind::tables::Load;

enum Command {
    Load(Arc<ProcessInfo>),
    Forget(u32),
}

/// The loading thread and its queue. Dropping it stops the thread (after the queued work).
#[derive(Debug)]
pub struct TableLoader {
    tx: Option<Sender<Command>>,
    thread: Option<JoinHandle<()>>,
}

impl TableLoader {
    /// Starts the thread, which owns `tables` from now on.
    pub fn spawn(tables: UnwindTables) -> std::io::Result<TableLoader> {
        let (tx, rx) = channel();
        let thread = std::thread::Builder::new()
            .name("strata-unwind".into())
            .spawn(move || serve(tables, rx))?;
        Ok(TableLoader {
            tx: Some(tx),
            thread: Some(thread),
        })
    }

    /// Queues loading (or reloading) a process's mappings.
    pub fn load(&self, info: Arc<ProcessInfo>) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(Command::Load(info));
        }
    }

    /// Queues forgetting a process.
    pub fn forget(&self, pid: u32) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(Command::Forget(pid));
        }
    }
}

impl Drop for TableLoader {
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(mut tables: UnwindTables, rx: Receiver<Command>) {
    // Processes whose large files wait for a full load, oldest first.
    let mut full: VecDeque<Arc<ProcessInfo>> = VecDeque::new();
    loop {
        let cmd = match rx.try_recv() {
            Ok(cmd) => cmd,
            Err(TryRecvError::Disconnected) => return,
            Err(TryRecvError::Empty) => match full.pop_front() {
                Some(info) => {
                    tables.load_process(&info, Load::Full);
                    continue;
                }
                None => match rx.recv() {
                    Ok(cmd) => cmd,
                    Err(_) => return,
                },
            },
        };
        match cmd {
            Command::Load(info) => {
                full.retain(|i| i.pid != info.pid);
                if tables.load_process(&info, Load::Quick) {
                    full.push_back(info);
                }
            }
            Command::Forget(pid) => {
                full.retain(|i| i.pid != pid);
                tables.forget_process(pid);
            }
        }
    }
}

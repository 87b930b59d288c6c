//! The threads that serve the SQLite store: one writer committing in
//! groups, and readers with connections of their own (see the parent
//! module). Work arrives as closures over a connection; callers await the
//! answer. The one exception is a lookup by key (a few microseconds): it
//! runs where it is asked, on a connection of a small pool, because handing
//! it to a thread and back costs more than the lookup itself.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
use tokio::sync::oneshot;

use crate::store::StoreError;

/// The most writes one commit carries.
const MAX_GROUP: usize = 256;
/// How often the WAL is checkpointed (the writer does not: see
/// `checkpoint_loop`). Each passive checkpoint syncs the WAL and the
/// database file and copies every page written since the last one, once,
/// however often it was written in between: under sustained writes, fewer
/// checkpoints copy far fewer pages (every 1 ms cost a fifth of the write
/// path's throughput; every 50 ms, a few percent).
const CHECKPOINT_EVERY: Duration = Duration::from_millis(if cfg!(test) { 20 } else { 50 });
/// A WAL this long (in pages) after a passive checkpoint is checkpointed
/// in full (see `checkpoint_loop`): 64 MiB of 4 KiB pages (1 MiB in tests).
/// Each full checkpoint syncs the WAL and the database file while the
/// writer waits (2-12 ms here), so they should be rare; a longer WAL makes
/// every page lookup search more of its index, so not too rare.
const WAL_RESTART_FRAMES: i64 = if cfg!(test) { 256 } else { 16384 };
/// The size the WAL file is cut back to when it starts over, in bytes.
const WAL_SIZE_LIMIT: i64 = if cfg!(test) { 2 } else { 128 } * 1024 * 1024;
/// How long a connection waits for a lock before SQLite says it is busy.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the writer's routine `RESTART` waits for readers of older
/// snapshots (see `writer_loop`).
const RESTART_WAIT: Duration = Duration::from_millis(10);
/// Page cache per connection, in KiB (SQLite's negative `cache_size`).
const WRITER_CACHE_KIB: i64 = 8 * 1024;
const READER_CACHE_KIB: i64 = 4 * 1024;
/// Prepared statements kept per connection.
const STATEMENT_CACHE: usize = 96;

type ReadJob = Box<dyn FnOnce(&Connection) + Send>;

/// A write: run inside the group's transaction, answered after the commit.
trait WriteJob: Send {
    /// Runs the write; false if it failed and must be rolled back.
    fn run(&mut self, conn: &Connection) -> bool;
    /// Answers the caller once the group's fate is known.
    fn finish(self: Box<Self>, committed: Result<(), String>);
}

struct Write<T, F> {
    work: Option<F>,
    outcome: Option<Result<T, StoreError>>,
    reply: oneshot::Sender<Result<T, StoreError>>,
}

impl<T, F> WriteJob for Write<T, F>
where
    T: Send,
    F: FnOnce(&Connection) -> Result<T, StoreError> + Send,
{
    fn run(&mut self, conn: &Connection) -> bool {
        let Some(work) = self.work.take() else {
            return false;
        };
        let outcome = work(conn);
        let ok = outcome.is_ok();
        self.outcome = Some(outcome);
        ok
    }

    fn finish(self: Box<Self>, committed: Result<(), String>) {
        let answer = match (self.outcome, committed) {
            (Some(Err(e)), _) => Err(e),
            (Some(Ok(v)), Ok(())) => Ok(v),
            (Some(Ok(_)), Err(e)) => Err(StoreError::Unavailable(e)),
            (None, _) => Err(StoreError::Unavailable("the write was not run".into())),
        };
        // The caller may have gone away (its request was cancelled).
        let _ = self.reply.send(answer);
    }
}

/// Where the database is: a file, or memory (`sqlite::memory:`, tests).
enum Location {
    File(PathBuf),
    Memory,
}

fn location(url: &str) -> Result<Location, StoreError> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .ok_or_else(|| StoreError::Unavailable(format!("not a sqlite: URL: {url}")))?;
    // Options in the query part (`?mode=rwc`, sqlx style) are not needed:
    // the file is always created when missing.
    let path = rest.split('?').next().unwrap_or_default();
    match path {
        "" | ":memory:" => Ok(Location::Memory),
        p => Ok(Location::File(PathBuf::from(p))),
    }
}

fn configure(conn: &Connection, cache_kib: i64) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    conn.execute_batch(&format!(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
         PRAGMA foreign_keys = ON; PRAGMA cache_size = -{cache_kib}; \
         PRAGMA secure_delete = ON;"
    ))
}

fn open_writer(location: &Location) -> rusqlite::Result<Connection> {
    let conn = match location {
        Location::File(path) => Connection::open(path)?,
        Location::Memory => Connection::open_in_memory()?,
    };
    configure(&conn, WRITER_CACHE_KIB)?;
    conn.execute_batch(&format!(
        "PRAGMA wal_autocheckpoint = 0; PRAGMA journal_size_limit = {WAL_SIZE_LIMIT};"
    ))?;
    // The private, temporary database of pending pushed requests. Its
    // rollback journal is kept in memory: a crash loses the database
    // anyway, and a journal file written, truncated and deleted per commit
    // was a tenth of a pushed request's time.
    conn.execute_batch(
        "ATTACH DATABASE '' AS pending; \
         PRAGMA pending.journal_mode = MEMORY; \
         PRAGMA pending.cache_size = -2048; \
         PRAGMA pending.secure_delete = ON; \
         CREATE TABLE pending.requests ( \
             hash BLOB PRIMARY KEY, data TEXT NOT NULL, expires_at INTEGER NOT NULL, \
             opened INTEGER NOT NULL DEFAULT 0, front_channel INTEGER NOT NULL DEFAULT 0); \
         CREATE INDEX pending.requests_expires_at ON requests (expires_at);",
    )?;
    Ok(conn)
}

fn open_reader(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    configure(&conn, READER_CACHE_KIB)?;
    conn.execute_batch("PRAGMA query_only = ON;")?;
    Ok(conn)
}

/// Runs one group of writes in one transaction; the error is the commit's.
fn run_group(conn: &Connection, group: &mut [Box<dyn WriteJob>]) -> Result<(), String> {
    let exec = |sql: &str| -> Result<(), String> {
        conn.prepare_cached(sql)
            .and_then(|mut s| s.execute([]))
            .map(|_| ())
            .map_err(|e| e.to_string())
    };
    exec("BEGIN IMMEDIATE")?;
    let outcome = (|| {
        if let [only] = group {
            // One write: its failure is the transaction's.
            if !only.run(conn) {
                exec("ROLLBACK")?;
                return Ok(());
            }
        } else {
            for job in group.iter_mut() {
                exec("SAVEPOINT job")?;
                if !job.run(conn) {
                    exec("ROLLBACK TO job")?;
                }
                exec("RELEASE job")?;
            }
        }
        exec("COMMIT")
    })();
    if outcome.is_err() && !conn.is_autocommit() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    outcome
}

/// What the writer and the checkpointer share. SQLite runs one checkpoint
/// at a time: one that finds another running returns `SQLITE_BUSY` at once
/// rather than waiting, so the two take turns.
#[derive(Default)]
struct Checkpoints {
    /// Set by the checkpointer: the writer should run a `RESTART`.
    restart: AtomicBool,
    /// Set after erasure: the writer should run a `TRUNCATE`, so no page
    /// image from before the erasure stays in the WAL file.
    truncate: AtomicBool,
    /// Whether the last `TRUNCATE` emptied the WAL.
    truncated: AtomicBool,
    running: Mutex<()>,
}

impl Checkpoints {
    fn turn(&self) -> std::sync::MutexGuard<'_, ()> {
        // The guarded value is (): a panic while it was held left nothing
        // half-changed.
        self.running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The turn, if no checkpoint is running now.
    fn try_turn(&self) -> Option<std::sync::MutexGuard<'_, ()>> {
        match self.running.try_lock() {
            Ok(guard) => Some(guard),
            Err(std::sync::TryLockError::Poisoned(e)) => Some(e.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => None,
        }
    }
}

/// Commits the queued writes group by group. When the checkpointer asks
/// (`restart`), or the WAL file (`wal`) has grown past [`WAL_SIZE_LIMIT`]
/// all the same, it runs a `RESTART` checkpoint between two groups: what the
/// passive checkpoints left is copied (little, so the pause is short), the
/// next commit starts the WAL from its beginning, and the file is cut back
/// to [`WAL_SIZE_LIMIT`]. The writer holds no transaction then, so the
/// checkpoint never waits for a writer.
fn writer_loop(
    conn: Connection,
    jobs: crossbeam_channel::Receiver<Box<dyn WriteJob>>,
    shared: Arc<Checkpoints>,
    wal: Option<PathBuf>,
) {
    while let Ok(first) = jobs.recv() {
        let mut group = Vec::with_capacity(16);
        group.push(first);
        while group.len() < MAX_GROUP {
            match jobs.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        let committed = run_group(&conn, &mut group);
        if let Err(e) = &committed {
            tracing::error!(error = %e, writes = group.len(), "SQLite commit failed");
        }
        for job in group {
            job.finish(committed.clone());
        }
        // Asked by the checkpointer, the RESTART waits for a moment when the
        // checkpointer is not running (it follows within a group or two), so
        // the writer never waits for a passive checkpoint's sync. Past the
        // limit it waits for its turn: the checkpointer runs on a timer and
        // may not get the core for a while (a busy machine), but the WAL's
        // length is checked after every commit.
        //
        // After erasure it runs a `TRUNCATE` instead: the database file then
        // holds the erased rows zeroed (`secure_delete`), and the WAL, which
        // held their earlier page images, is emptied.
        if shared.truncate.swap(false, Ordering::AcqRel) {
            let _turn = shared.turn();
            shared.restart.store(false, Ordering::Release);
            let emptied = match checkpoint(&conn, "TRUNCATE") {
                // -1: no WAL at all (an in-memory database).
                Ok(frames) if frames <= 0 => true,
                Ok(_) => {
                    tracing::warn!("readers kept SQLite from emptying the WAL after erasure");
                    false
                }
                Err(e) => {
                    tracing::warn!(error = %e, "SQLite checkpoint failed");
                    false
                }
            };
            shared.truncated.store(emptied, Ordering::Release);
            continue;
        }
        let too_long = wal.as_deref().is_some_and(wal_too_long);
        let turn = if too_long {
            Some(shared.turn())
        } else if shared.restart.load(Ordering::Acquire) {
            shared.try_turn()
        } else {
            None
        };
        if let Some(_turn) = turn {
            let asked = shared.restart.swap(false, Ordering::AcqRel);
            // A RESTART waits for every reader of an older snapshot, and the
            // writer with it: a long read (the gauges' recount of a million
            // rows) held every write for seconds. Asked by the checkpointer,
            // it waits at most `RESTART_WAIT`; if readers are still there, it
            // copies what it can, as a passive checkpoint would, and the
            // checkpointer asks again later. Past the size limit it waits.
            let patience = if asked && !too_long {
                RESTART_WAIT
            } else {
                BUSY_TIMEOUT
            };
            let restarted = conn
                .busy_timeout(patience)
                .and_then(|()| checkpoint(&conn, "RESTART"));
            // Whatever the checkpoint did, the writer's own waits are back
            // to the usual timeout.
            let restored = conn.busy_timeout(BUSY_TIMEOUT);
            if let Err(e) = restarted.and(restored) {
                tracing::warn!(error = %e, "SQLite checkpoint failed");
            }
        }
    }
    // Every sender is gone: the store was dropped. Closing the connection
    // checkpoints the WAL.
}

/// Whether the WAL file has grown past [`WAL_SIZE_LIMIT`]. The file only
/// grows when frames are written past its end, and the first commit after
/// a `RESTART` cuts it back to the limit, so a file this long means the WAL
/// has that many frames since it last started over.
fn wal_too_long(wal: &Path) -> bool {
    std::fs::metadata(wal).is_ok_and(|m| m.len() > WAL_SIZE_LIMIT.unsigned_abs())
}

fn reader_loop(conn: Connection, jobs: crossbeam_channel::Receiver<ReadJob>) {
    while let Ok(job) = jobs.recv() {
        job(&conn);
    }
}

/// Runs `PRAGMA wal_checkpoint(MODE)`; returns the WAL's length in frames.
fn checkpoint(conn: &Connection, mode: &str) -> rusqlite::Result<i64> {
    conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |r| r.get(1))
}

/// Copies the WAL back into the database file (and syncs it) on a thread of
/// its own, every [`CHECKPOINT_EVERY`], so the writer's commits never pay for
/// it. `PASSIVE` neither blocks nor waits for the writer or the readers, but
/// under writes that never pause it never catches up either, and the WAL
/// only starts over once it has. Past [`WAL_RESTART_FRAMES`] it asks the
/// writer (`shared.restart`) to finish the job between two commits (see
/// `writer_loop`), so the WAL file stays bounded; the passive checkpoints
/// before it leave that `RESTART` at most [`CHECKPOINT_EVERY`] of writes to
/// copy.
fn checkpoint_loop(
    conn: Connection,
    stop: crossbeam_channel::Receiver<()>,
    shared: Arc<Checkpoints>,
) {
    while let Err(crossbeam_channel::RecvTimeoutError::Timeout) =
        stop.recv_timeout(CHECKPOINT_EVERY)
    {
        let passive = {
            let _turn = shared.turn();
            checkpoint(&conn, "PASSIVE")
        };
        match passive {
            Ok(frames) if frames > WAL_RESTART_FRAMES => {
                shared.restart.store(true, Ordering::Release);
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "SQLite checkpoint failed"),
        }
    }
    // The store is gone: the writer's connection checkpoints as it closes.
}

fn closed() -> StoreError {
    StoreError::Unavailable("the SQLite store has shut down".into())
}

/// Reader threads: one per core, at least two, at most eight.
fn reader_count() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .clamp(2, 8)
}

fn spawn(name: String, work: impl FnOnce() + Send + 'static) -> Result<(), StoreError> {
    std::thread::Builder::new()
        .name(name.clone())
        .spawn(work)
        .map(drop)
        .map_err(|e| StoreError::Unavailable(format!("starting {name}: {e}")))
}

/// The writer's queue and, for a file, the readers' queue. Dropping it
/// closes both: the threads finish their queued work and exit.
pub(super) struct Threads {
    writes: crossbeam_channel::Sender<Box<dyn WriteJob>>,
    /// None for an in-memory database, which only the writer's connection
    /// sees: reads go to the writer too.
    reads: Option<crossbeam_channel::Sender<ReadJob>>,
    /// Connections for lookups by key, run on the caller's thread; None
    /// for an in-memory database.
    lookups: Option<Mutex<Vec<Connection>>>,
    /// Dropped with the store, which stops the checkpointer.
    _checkpoints: Option<crossbeam_channel::Sender<()>>,
    shared: Arc<Checkpoints>,
}

impl Threads {
    /// Opens the connections of the database at `url` (`sqlite://PATH`, or
    /// `sqlite::memory:`), creating the file when missing, and starts the threads.
    pub(super) fn open(url: &str) -> Result<Self, StoreError> {
        let location = location(url)?;
        if let Location::File(path) = &location {
            if let Some(parent) = path.parent() {
                if !parent.as_os_str().is_empty() {
                    std::fs::create_dir_all(parent).map_err(|e| {
                        StoreError::Unavailable(format!("creating {}: {e}", parent.display()))
                    })?;
                }
            }
        }
        let writer = open_writer(&location)?;
        let (writes, write_jobs) = crossbeam_channel::unbounded::<Box<dyn WriteJob>>();
        let shared = Arc::new(Checkpoints::default());
        let asks = shared.clone();
        let ours = shared.clone();
        let wal = match &location {
            Location::File(path) => {
                let mut name = path.clone().into_os_string();
                name.push("-wal");
                Some(PathBuf::from(name))
            }
            Location::Memory => None,
        };
        spawn("sqlite-writer".into(), move || {
            writer_loop(writer, write_jobs, shared, wal)
        })?;
        let (reads, lookups, checkpoints) = match &location {
            Location::Memory => (None, None, None),
            Location::File(path) => {
                let (reads, read_jobs) = crossbeam_channel::unbounded::<ReadJob>();
                for i in 0..reader_count() {
                    let conn = open_reader(path)?;
                    let jobs = read_jobs.clone();
                    spawn(format!("sqlite-reader-{i}"), move || {
                        reader_loop(conn, jobs)
                    })?;
                }
                let checkpointer = Connection::open(path)?;
                checkpointer.busy_timeout(BUSY_TIMEOUT)?;
                let (checkpoints, stop) = crossbeam_channel::bounded::<()>(0);
                spawn("sqlite-checkpoint".into(), move || {
                    checkpoint_loop(checkpointer, stop, asks)
                })?;
                let lookups = (0..reader_count())
                    .map(|_| open_reader(path))
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                (Some(reads), Some(Mutex::new(lookups)), Some(checkpoints))
            }
        };
        Ok(Self {
            writes,
            reads,
            lookups,
            _checkpoints: checkpoints,
            shared: ours,
        })
    }

    /// Empties the WAL file (a `TRUNCATE` checkpoint on the writer, between
    /// two commits) and returns once that was tried: after it, rows deleted
    /// before are in neither file (with `secure_delete`, their bytes are
    /// zeroed in the database file, and no older page image is left in the
    /// WAL). Readers still reading an older snapshot make it wait for them
    /// (the busy timeout); false if they outlasted it.
    pub(super) async fn truncate_wal(&self) -> Result<bool, StoreError> {
        self.shared.truncated.store(false, Ordering::Release);
        self.shared.truncate.store(true, Ordering::Release);
        // A write wakes the writer; the checkpoint follows its commit.
        self.write(|_| Ok(())).await?;
        // And one more, answered only once the checkpoint is over.
        self.write(|_| Ok(())).await?;
        Ok(self.shared.truncated.load(Ordering::Acquire))
    }

    /// Runs `work`, a lookup by key, right here on a pooled connection; on a
    /// reader thread when every pooled connection is in use.
    pub(super) async fn lookup<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let pool = self.lookups.as_ref();
        let conn = pool.and_then(|p| p.lock().ok().and_then(|mut free| free.pop()));
        let (Some(pool), Some(conn)) = (pool, conn) else {
            return self.read(work).await;
        };
        let answer = work(&conn);
        if let Ok(mut free) = pool.lock() {
            free.push(conn);
        }
        answer
    }

    /// Runs `work` on a reader thread.
    pub(super) async fn read<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let Some(reads) = &self.reads else {
            return self.write(work).await;
        };
        let (reply, answer) = oneshot::channel();
        let job: ReadJob = Box::new(move |conn| {
            let _ = reply.send(work(conn));
        });
        reads.send(job).map_err(|_| closed())?;
        answer.await.map_err(|_| closed())?
    }

    /// Runs `work` on the writer thread, in the next group's transaction;
    /// answers after that transaction committed.
    pub(super) async fn write<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job = Box::new(Write {
            work: Some(work),
            outcome: None,
            reply,
        });
        self.writes.send(job).map_err(|_| closed())?;
        answer.await.map_err(|_| closed())?
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A long read (the gauges' recount of a large database) keeps a
    /// snapshot for seconds. Writes go on meanwhile: the writer's routine
    /// `RESTART`, which would wait for that reader, gives up after
    /// `RESTART_WAIT` instead of holding every write behind it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_long_read_does_not_hold_the_writes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("long-read.db");
        let threads = Arc::new(Threads::open(&format!("sqlite://{}", path.display())).unwrap());
        threads
            .write(|c| {
                c.execute_batch("CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB NOT NULL)")?;
                Ok(())
            })
            .await
            .unwrap();
        let (release, released) = crossbeam_channel::bounded::<()>(1);
        let (started, reading) = tokio::sync::oneshot::channel();
        let reader = {
            let threads = threads.clone();
            tokio::spawn(async move {
                threads
                    .read(move |c| {
                        c.execute_batch("BEGIN")?;
                        let rows: i64 = c.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))?;
                        let _ = started.send(());
                        let _ = released.recv_timeout(Duration::from_secs(30));
                        c.execute_batch("COMMIT")?;
                        Ok(rows)
                    })
                    .await
            })
        };
        reading.await.unwrap();
        // Past WAL_RESTART_FRAMES (256 pages in tests) but within the WAL's
        // size limit (2 MiB in tests, past which the writer does wait), with
        // pauses so the checkpointer (every 20 ms in tests) asks for
        // RESTARTs while the reader holds its snapshot.
        for i in 0..12i64 {
            let write = threads.write(move |c| {
                for j in 0..30 {
                    c.prepare_cached("INSERT INTO t (k, v) VALUES (?, zeroblob(4000))")?
                        .execute([i * 30 + j])?;
                }
                Ok(())
            });
            let answered = tokio::time::timeout(Duration::from_secs(2), write).await;
            assert!(answered.is_ok(), "write {i} waited for the reader");
            answered.unwrap().unwrap();
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        assert!(
            !wal_too_long(&dir.path().join("long-read.db-wal")),
            "the test went past the WAL's size limit"
        );
        release.send(()).unwrap();
        assert_eq!(reader.await.unwrap().unwrap(), 0);
    }

    /// Writes that never pause: without the full checkpoints the WAL would
    /// only grow (here to tens of MiB); with them it stays near its limit.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_wal_stays_bounded_under_writes_that_never_pause() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wal.db");
        let threads = Arc::new(Threads::open(&format!("sqlite://{}", path.display())).unwrap());
        threads
            .write(|c| {
                c.execute_batch("CREATE TABLE t (k BLOB PRIMARY KEY, v BLOB NOT NULL)")?;
                Ok(())
            })
            .await
            .unwrap();
        let wal = dir.path().join("wal.db-wal");
        let mut largest = 0;
        let mut tasks = tokio::task::JoinSet::new();
        for task in 0..32u64 {
            let threads = threads.clone();
            tasks.spawn(async move {
                for i in 0..1_500u64 {
                    let key = format!("{task}-{i}");
                    threads
                        .write(move |c| {
                            c.prepare_cached("INSERT INTO t (k, v) VALUES (?, zeroblob(2000))")?
                                .execute([key])?;
                            Ok(())
                        })
                        .await
                        .unwrap();
                }
            });
        }
        while !tasks.is_empty() {
            tokio::select! {
                done = tasks.join_next() => { done.unwrap().unwrap(); }
                () = tokio::time::sleep(Duration::from_millis(20)) => {}
            }
            largest = largest.max(std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0));
        }
        let written: i64 = threads
            .read(|c| Ok(c.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))?))
            .await
            .unwrap();
        assert_eq!(written, 48_000);
        // 48,000 rows of 2 kB: about 100 MiB went through the WAL. It stays
        // within its limit (2 MiB here) and one group's commit, whether or
        // not the checkpointer got its turn.
        assert!(largest < 4 * 1024 * 1024, "the WAL grew to {largest} bytes");
    }
}

//! The one thread pool: scoped threads that take work from a shared queue,
//! so a few slow items do not leave the other threads idle. Results come
//! back in the order of the items, whatever the thread count.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The machine's core count (1 when unknown).
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// `f(0)`, ..., `f(n - 1)` on up to `threads` threads, each taking the next
/// index as it finishes one; the results in index order.
pub(crate) fn in_tasks<T: Send>(n: usize, threads: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let next = AtomicUsize::new(0);
    let done: Mutex<Vec<(usize, T)>> = Mutex::new(Vec::with_capacity(n));
    let work = || {
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            if i >= n {
                return;
            }
            let r = f(i);
            done.lock().expect("tasks lock").push((i, r));
        }
    };
    std::thread::scope(|s| {
        // A thread the system refuses leaves its share to the others, and
        // to this thread when none could be started.
        let started = (0..threads.clamp(1, n.max(1)))
            .filter(|_| std::thread::Builder::new().spawn_scoped(s, work).is_ok())
            .count();
        if started == 0 {
            work();
        }
    });
    let mut done = done.into_inner().expect("tasks lock");
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, r)| r).collect()
}

/// Maps `0..n` in up to `threads` contiguous chunks and concatenates the
/// results in order (one thread: `f(0..n)` here).
pub(crate) fn in_chunks<T: Send>(
    n: usize,
    threads: usize,
    f: impl Fn(std::ops::Range<usize>) -> Vec<T> + Sync,
) -> Vec<T> {
    let threads = threads.clamp(1, n.max(1));
    if threads == 1 {
        return f(0..n);
    }
    let chunk = n.div_ceil(threads);
    let starts: Vec<usize> = (0..n).step_by(chunk).collect();
    in_tasks(starts.len(), threads, |c| {
        f(starts[c]..(starts[c] + chunk).min(n))
    })
    .into_iter()
    .flatten()
    .collect()
}

/// Calls `f` on every item of `items` on `threads` threads, each taking
/// the next item as it finishes one (one thread: in order, here).
pub(crate) fn for_each_shared<I>(items: I, threads: usize, f: impl Fn(I::Item) + Sync)
where
    I: Iterator + Send,
    I::Item: Send,
{
    if threads <= 1 {
        items.for_each(f);
        return;
    }
    let items = Mutex::new(items);
    let work = || {
        loop {
            let next = items.lock().expect("work queue lock").next();
            let Some(item) = next else { break };
            f(item);
        }
    };
    std::thread::scope(|s| {
        // As in `in_tasks`: refused threads leave their share to the others.
        let started = (0..threads)
            .filter(|_| std::thread::Builder::new().spawn_scoped(s, work).is_ok())
            .count();
        if started == 0 {
            work();
        }
    });
}

/// Tasks of at most `size` items over jobs of `(job, items)`: `(job, range)`
/// in job order, each job's ranges in order.
pub(crate) fn task_ranges(
    jobs: impl Iterator<Item = (usize, usize)>,
    size: usize,
) -> Vec<(usize, std::ops::Range<usize>)> {
    jobs.flat_map(|(j, n)| {
        (0..n)
            .step_by(size)
            .map(move |start| (j, start..(start + size).min(n)))
    })
    .collect()
}

/// Work handed to a scoped thread, or already done on this one.
pub(crate) enum Task<'scope, T> {
    /// Running on its own thread.
    Thread(std::thread::ScopedJoinHandle<'scope, T>),
    /// Done here: the system refused a thread.
    Done(T),
}

impl<T> Task<'_, T> {
    /// The result (a panic on the thread goes on here).
    pub(crate) fn join(self) -> T {
        match self {
            Task::Thread(h) => h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)),
            Task::Done(t) => t,
        }
    }
}

/// Runs `f` on a new thread of the scope `s`, or right here when the
/// system refuses one (a process limit), so a refused thread costs time,
/// never the run.
pub(crate) fn spawn_or_run<'scope, T, F>(
    s: &'scope std::thread::Scope<'scope, '_>,
    f: F,
) -> Task<'scope, T>
where
    F: FnOnce() -> T + Send + 'scope,
    T: Send + 'scope,
{
    let cell = std::sync::Arc::new(Mutex::new(Some(f)));
    let theirs = std::sync::Arc::clone(&cell);
    let started = std::thread::Builder::new().spawn_scoped(s, move || {
        let f = theirs.lock().expect("task lock").take();
        f.expect("a task runs once")()
    });
    match started {
        Ok(h) => Task::Thread(h),
        Err(_) => {
            let f = cell.lock().expect("task lock").take();
            Task::Done(f.expect("a refused task has not run")())
        }
    }
}

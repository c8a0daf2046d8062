//! An ordered parallel map with a bounded window: worker threads take items
//! from an input iterator and run a function on them, and the results come
//! out in input order. At most `window` items are taken and not yet handed
//! out (running or waiting to be reordered), so memory stays bounded
//! whatever the input's length. The first error (or panic) stops the
//! workers from taking more items; the results before it still come out in
//! order, then the error, then nothing.
//!
//! The stream restore uses it to decompress and hash blobs on every core.

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex};

/// The input side, behind its own lock: taking an item may block (a channel
/// from a download thread) and must not hold up workers handing in results.
struct Input<I> {
    items: I,
    next_seq: u64,
}

/// The reordering side.
struct Window<R> {
    /// Items taken (or being taken) and not yet handed out.
    in_use: usize,
    /// Finished results waiting for their turn, by sequence number.
    done: BTreeMap<u64, Result<R, String>>,
    /// The sequence number the consumer wants next.
    next_out: u64,
    /// Set when the input ran dry: its item count.
    total: Option<u64>,
    /// Set by the first error or when the consumer goes away.
    stopped: bool,
    /// Workers still running.
    workers: usize,
}

struct Shared<I, R> {
    input: Mutex<Input<I>>,
    window: Mutex<Window<R>>,
    changed: Condvar,
    limit: usize,
}

/// The results of [`map`], in input order.
pub struct Ordered<I, R> {
    shared: Arc<Shared<I, R>>,
    finished: bool,
}

/// Runs `work` over `items` on `workers` threads (at least one), with at most
/// `window` items (at least one) taken and not yet returned by the iterator.
pub fn map<T, I, R, F>(
    items: I,
    workers: usize,
    window: usize,
    work: F,
) -> std::io::Result<Ordered<I, R>>
where
    I: Iterator<Item = T> + Send + 'static,
    R: Send + 'static,
    F: Fn(T) -> Result<R, String> + Send + Sync + 'static,
{
    let workers = workers.max(1);
    let shared = Arc::new(Shared {
        input: Mutex::new(Input { items, next_seq: 0 }),
        window: Mutex::new(Window {
            in_use: 0,
            done: BTreeMap::new(),
            next_out: 0,
            total: None,
            stopped: false,
            workers,
        }),
        changed: Condvar::new(),
        limit: window.max(1),
    });
    let work = Arc::new(work);
    for n in 0..workers {
        let (mine, work) = (shared.clone(), work.clone());
        let spawned = std::thread::Builder::new()
            .name(format!("vaultctl-decode-{n}"))
            .spawn(move || run_worker(&mine, &*work));
        if let Err(e) = spawned {
            let mut w = lock(&shared.window);
            w.stopped = true;
            w.workers -= workers - n;
            shared.changed.notify_all();
            drop(w);
            if n == 0 {
                return Err(e);
            }
            break;
        }
    }
    Ok(Ordered {
        shared,
        finished: false,
    })
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn run_worker<T, I, R, F>(shared: &Shared<I, R>, work: &F)
where
    I: Iterator<Item = T>,
    F: Fn(T) -> Result<R, String>,
{
    loop {
        // A slot in the window first, so the input is never read ahead of it.
        {
            let mut w = lock(&shared.window);
            while !w.stopped && w.total.is_none() && w.in_use >= shared.limit {
                w = shared.changed.wait(w).unwrap_or_else(|p| p.into_inner());
            }
            if w.stopped || w.total.is_some() {
                break;
            }
            w.in_use += 1;
        }
        let taken = {
            let mut input = lock(&shared.input);
            match input.items.next() {
                Some(item) => {
                    let seq = input.next_seq;
                    input.next_seq += 1;
                    Ok((seq, item))
                }
                None => Err(input.next_seq),
            }
        };
        let (seq, item) = match taken {
            Ok(t) => t,
            Err(total) => {
                let mut w = lock(&shared.window);
                w.in_use -= 1;
                w.total = Some(total);
                shared.changed.notify_all();
                break;
            }
        };
        let result = catch_unwind(AssertUnwindSafe(|| work(item)))
            .unwrap_or_else(|_| Err("a decode thread panicked".to_string()));
        let mut w = lock(&shared.window);
        if result.is_err() {
            w.stopped = true;
        }
        w.done.insert(seq, result);
        shared.changed.notify_all();
    }
    let mut w = lock(&shared.window);
    w.workers -= 1;
    shared.changed.notify_all();
}

impl<I, R> Iterator for Ordered<I, R> {
    type Item = Result<R, String>;

    fn next(&mut self) -> Option<Result<R, String>> {
        if self.finished {
            return None;
        }
        let shared = &self.shared;
        let mut w = lock(&shared.window);
        loop {
            let next = w.next_out;
            if let Some(r) = w.done.remove(&next) {
                w.next_out += 1;
                w.in_use -= 1;
                shared.changed.notify_all();
                if r.is_err() {
                    self.finished = true;
                }
                return Some(r);
            }
            if w.total == Some(next) {
                self.finished = true;
                return None;
            }
            if w.workers == 0 {
                // Every worker left without the next result: only a stop
                // does that, and the stopping error was handed out already.
                self.finished = true;
                return Some(Err("the decode threads stopped early".to_string()));
            }
            w = shared.changed.wait(w).unwrap_or_else(|p| p.into_inner());
        }
    }
}

impl<I, R> Drop for Ordered<I, R> {
    /// The consumer went away: the workers finish the item in hand and stop.
    fn drop(&mut self) {
        let mut w = lock(&self.shared.window);
        w.stopped = true;
        w.done.clear();
        self.shared.changed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[test]
    fn results_come_out_in_input_order_when_workers_finish_out_of_order() {
        // Early items take longest, so later ones finish first.
        let out: Vec<u64> = map(0..40u64, 4, 8, |i| {
            std::thread::sleep(Duration::from_millis((40 - i) % 7 * 3));
            Ok(i * 10)
        })
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
        assert_eq!(out, (0..40).map(|i| i * 10).collect::<Vec<_>>());
    }

    #[test]
    fn empty_input_and_one_worker() {
        assert_eq!(map(0..0u8, 3, 2, Ok).unwrap().count(), 0);
        let out: Vec<u8> = map(0..5u8, 1, 1, Ok).unwrap().map(Result::unwrap).collect();
        assert_eq!(out, vec![0, 1, 2, 3, 4]);
    }

    #[test]
    fn the_window_bounds_items_taken_and_not_handed_out() {
        let taken = Arc::new(AtomicUsize::new(0));
        let t = taken.clone();
        let items = (0..100u32).inspect(move |_| {
            t.fetch_add(1, Ordering::SeqCst);
        });
        let mut out = map(items, 3, 5, Ok).unwrap();
        // Nothing consumed: the workers fill the window and wait.
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(taken.load(Ordering::SeqCst), 5);
        for expected in 0..10u32 {
            assert_eq!(out.next().unwrap().unwrap(), expected);
        }
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(taken.load(Ordering::SeqCst), 15);
        assert_eq!(out.count(), 90);
    }

    #[test]
    fn an_error_stops_the_workers_and_comes_out_in_its_place() {
        let started = Arc::new(AtomicUsize::new(0));
        let s = started.clone();
        let out: Vec<Result<u32, String>> = map(0..1000u32, 2, 4, move |i| {
            s.fetch_add(1, Ordering::SeqCst);
            if i == 7 {
                return Err(format!("blob {i} is corrupt"));
            }
            std::thread::sleep(Duration::from_millis(2));
            Ok(i)
        })
        .unwrap()
        .collect();
        // Everything before the error in order, then the error, then nothing.
        assert_eq!(out.len(), 8);
        for (i, r) in out[..7].iter().enumerate() {
            assert_eq!(r.as_ref().unwrap(), &(i as u32));
        }
        assert_eq!(out[7].as_ref().unwrap_err(), "blob 7 is corrupt");
        // No worker went on through the input after the error.
        std::thread::sleep(Duration::from_millis(50));
        assert!(started.load(Ordering::SeqCst) <= 8 + 4, "{started:?}");
    }

    #[test]
    fn a_panicking_worker_is_an_error_not_a_hang() {
        let out: Vec<Result<u32, String>> = map(0..10u32, 2, 3, |i| {
            if i == 3 {
                panic!("boom");
            }
            Ok(i)
        })
        .unwrap()
        .collect();
        assert_eq!(out.len(), 4);
        assert!(out[3].as_ref().unwrap_err().contains("panicked"));
    }

    #[test]
    fn dropping_the_results_early_lets_the_workers_exit() {
        let alive = Arc::new(AtomicUsize::new(0));
        let a = alive.clone();
        struct Guard(Arc<AtomicUsize>);
        impl Drop for Guard {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::SeqCst);
            }
        }
        alive.fetch_add(1, Ordering::SeqCst);
        let guard = Guard(a);
        let mut out = map(0..u32::MAX, 2, 4, move |i| {
            let _keep = &guard;
            Ok(i)
        })
        .unwrap();
        assert_eq!(out.next().unwrap().unwrap(), 0);
        drop(out);
        // The workers leave; the last one drops the work closure and its guard.
        for _ in 0..100 {
            if alive.load(Ordering::SeqCst) == 0 {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("the workers did not exit after the results were dropped");
    }
}

//! Fork-join over the machine's cores for the pure part of a batch (the scans projector decoding its
//! events and assessing its completed scans, a `Batch` serialising its documents): the items are cut
//! into one contiguous run per core, each run is mapped on a scoped thread (the calling thread maps
//! the first), and the results come back in the items' order, so the caller sees exactly what a
//! sequential map would give.
//!
//! A batch's task already does this work on its own thread; mapping on every core only
//! shortens that stretch, so it holds the runtime's thread no longer than the loop it replaces.
//! Inputs too small to repay a thread's start stay on the calling thread.

use std::num::NonZeroUsize;
use std::sync::OnceLock;

/// The cores this process may use (read once: the standard library reads cgroup limits each time).
fn cores() -> usize {
    static CORES: OnceLock<usize> = OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, NonZeroUsize::get))
}

/// `items.iter().map(map).collect()`, with each run of at least `min_run` items on its own core.
pub(crate) fn map_on_cores<T, R>(
    items: &[T],
    min_run: usize,
    map: impl Fn(&T) -> R + Sync,
) -> Vec<R>
where
    T: Sync,
    R: Send,
{
    let runs = cores().min(items.len() / min_run.max(1)).max(1);
    if runs == 1 {
        return items.iter().map(map).collect();
    }
    let run = items.len().div_ceil(runs);
    let map = &map;
    std::thread::scope(|scope| {
        let mut chunks = items.chunks(run);
        let first = chunks.next().unwrap_or_default();
        let others: Vec<_> = chunks
            .map(|chunk| scope.spawn(move || chunk.iter().map(map).collect::<Vec<R>>()))
            .collect();
        let mut mapped: Vec<R> = Vec::with_capacity(items.len());
        mapped.extend(first.iter().map(map));
        for other in others {
            match other.join() {
                Ok(results) => mapped.extend(results),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        mapped
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_results_are_a_sequential_maps_in_order() {
        for len in [0, 1, 2, 7, 64, 1_000, 10_001] {
            let items: Vec<u64> = (0..len).collect();
            let square = |n: &u64| n * n;
            let sequential: Vec<u64> = items.iter().map(square).collect();
            for min_run in [0, 1, 3, 100] {
                assert_eq!(
                    map_on_cores(&items, min_run, square),
                    sequential,
                    "{len} items, runs of at least {min_run}"
                );
            }
        }
    }

    #[test]
    fn large_inputs_are_mapped_on_more_than_one_thread_when_there_are_cores() {
        let items: Vec<u32> = (0..4_096).collect();
        let threads = map_on_cores(&items, 1, |_| std::thread::current().id());
        let distinct: std::collections::HashSet<_> = threads.into_iter().collect();
        assert_eq!(distinct.len(), cores().min(items.len()));
    }

    #[test]
    fn a_panic_in_a_run_reaches_the_caller() {
        let items: Vec<u32> = (0..1_000).collect();
        let caught = std::panic::catch_unwind(|| {
            map_on_cores(&items, 1, |n| assert!(*n != 999, "the last item"))
        });
        assert!(caught.is_err());
    }
}

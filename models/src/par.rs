//! An order-preserving parallel map on the machine's cores, for work whose result must
//! not depend on how many there are (the forest's trees, threshold candidates).

/// How many threads [`map`] uses: [`std::thread::available_parallelism`], 1 if unknown.
pub(crate) fn workers() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

/// `items.iter().map(f).collect()`, computed on up to [`workers`] threads.
pub(crate) fn map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    map_on(items, workers(), f)
}

/// `items.iter().map(f).collect()`, computed on up to `workers` scoped threads, each
/// mapping one contiguous chunk; the results come back in `items` order, so they are
/// the same for any `workers`.
pub(crate) fn map_on<T: Sync, R: Send>(
    items: &[T],
    workers: usize,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let workers = workers.clamp(1, items.len().max(1));
    if workers == 1 {
        return items.iter().map(f).collect();
    }
    let f = &f;
    std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .chunks(items.len().div_ceil(workers))
            .map(|chunk| scope.spawn(move || chunk.iter().map(f).collect::<Vec<R>>()))
            .collect();
        let mut out = Vec::with_capacity(items.len());
        for h in handles {
            // A panic in `f` is a bug, not bad input: pass it on as it was.
            out.extend(h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)));
        }
        out
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn results_come_back_in_order_on_any_number_of_threads() {
        let items: Vec<u64> = (0..101).collect();
        let serial: Vec<u64> = items.iter().map(|x| x * x + 1).collect();
        for workers in [0, 1, 2, 3, 16, 500] {
            assert_eq!(
                super::map_on(&items, workers, |x| x * x + 1),
                serial,
                "{workers}"
            );
        }
        assert!(super::map_on(&[] as &[u64], 4, |x| *x).is_empty());
    }
}

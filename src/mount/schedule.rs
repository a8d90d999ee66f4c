//! The order a Mount's reads start in. A vault's clients learn the vault's scope from their
//! first request's 401 challenge and only then carry a token, so each vault's first read goes
//! alone; the vault's other reads start once its scope is learned (or that read ended), at
//! most `max` at a time across vaults. Warm clients have learned it already and everything
//! starts at once. The first fatal result stops new reads (all-or-nothing).

use std::collections::VecDeque;
use std::future::Future;
use std::sync::Arc;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;

use super::reads::ReadResult;
use crate::keyvault::VaultReader;

/// Runs `read(i)` for every read `i`, which goes to vault `vault_of[i]` (an index into
/// `readers`). Returns each read's result, `None` for those never started after a failure.
pub(super) async fn run<F, Fut>(
    vault_of: &[usize],
    readers: &[Arc<VaultReader>],
    max: usize,
    read: F,
    fatal: impl Fn(usize, &ReadResult) -> bool,
) -> Vec<Option<ReadResult>>
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = (usize, ReadResult)>,
{
    let max = max.max(1);
    let mut results: Vec<Option<ReadResult>> = vault_of.iter().map(|_| None).collect();
    let mut pending = FuturesUnordered::new();
    let mut waiting = vec![false; readers.len()];
    let mut learned = FuturesUnordered::new();
    let mut queue: VecDeque<usize> = VecDeque::new();
    for (i, &vault) in vault_of.iter().enumerate() {
        if waiting[vault] {
            queue.push_back(i);
            continue;
        }
        // The vault's first read leads; the vault's others wait for its scope.
        pending.push(read(i));
        waiting[vault] = true;
        let reader = readers[vault].clone();
        learned.push(async move {
            reader.scope_learned().await;
            vault
        });
    }
    let mut failed = false;
    while !failed {
        let mut blocked = VecDeque::with_capacity(queue.len());
        while let Some(i) = queue.pop_front() {
            if !waiting[vault_of[i]] && pending.len() < max {
                pending.push(read(i));
            } else {
                blocked.push_back(i);
            }
        }
        queue = blocked;
        tokio::select! {
            biased;
            Some(vault) = learned.next(), if !learned.is_empty() => waiting[vault] = false,
            next = pending.next() => match next {
                Some((i, result)) => {
                    // All-or-nothing: after a failure there is no point reading the rest.
                    failed = fatal(i, &result);
                    waiting[vault_of[i]] = false;
                    results[i] = Some(result);
                }
                // Nothing in flight: every waiting vault's leader has ended, so nothing waits.
                None => break,
            },
        }
    }
    results
}

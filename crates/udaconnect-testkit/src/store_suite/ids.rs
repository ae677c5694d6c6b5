use udaconnect_core::record::FIX_ID_BASE;
use udaconnect_sim::Rng;

use super::StoreEngine;

/// On empty stores leases start at 1 and follow each other; `reserve_through` skips ahead
/// and never back; a restart continues where the leases stopped.
pub async fn id_leases_never_repeat<E: StoreEngine>() {
    let stores = E::open().await;
    let a = stores.leaser("location").await;
    assert_eq!(a.lease(100).await.unwrap(), 1);
    assert_eq!(a.lease(100).await.unwrap(), 101);
    a.reserve_through(5000).await.unwrap();
    a.reserve_through(10).await.unwrap();
    drop(a);
    let b = stores.leaser("location").await;
    assert_eq!(b.lease(10).await.unwrap(), 5001);
}

/// Blocks leased at once (by every process, where processes share the state) never overlap;
/// zero means one; a restart continues above every block; each name counts apart; the ids
/// from [`FIX_ID_BASE`] up (tracker fixes, original producers' records) are never leased.
pub async fn id_leases_are_unique_across_concurrent_leasers_and_restarts<E: StoreEngine>() {
    let stores = E::open().await;
    let first = stores.leaser("location").await;
    let second = if E::LEASERS_SHARED_BY_PROCESSES {
        stores.leaser("location").await
    } else {
        first.clone()
    };
    let leasers = [first, second];
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let leaser = leasers[i % 2].clone();
            tokio::spawn(async move {
                let mut rng = Rng::new(i as u64);
                let mut blocks = Vec::new();
                for _ in 0..40 {
                    let size = 1 + rng.below(5000) as u64;
                    blocks.push((leaser.lease(size).await.unwrap(), size as i64));
                }
                blocks
            })
        })
        .collect();
    let mut blocks = Vec::new();
    for t in tasks {
        blocks.extend(t.await.unwrap());
    }
    blocks.sort_unstable();
    assert_eq!(blocks[0].0, 1, "{blocks:?}");
    for pair in blocks.windows(2) {
        assert!(pair[0].0 + pair[0].1 <= pair[1].0, "overlap: {pair:?}");
    }
    let top = blocks.last().map(|b| b.0 + b.1).unwrap();

    // Zero means one; reserve_through never goes back.
    let a = leasers[0].lease(0).await.unwrap();
    assert_eq!(a, top);
    leasers[1].reserve_through(a + 10_000).await.unwrap();
    leasers[0].reserve_through(5).await.unwrap();
    // A restart (a new leaser on the same state) continues where the leases stopped.
    let restarted = stores.leaser("location").await;
    assert_eq!(restarted.lease(10).await.unwrap(), a + 10_001);
    // Another name counts apart.
    let other = stores.leaser("other").await;
    assert_eq!(other.lease(1).await.unwrap(), 1);
    assert_eq!(other.lease(1).await.unwrap(), 2);

    // The fix and derived id spaces are never leased.
    assert!(leasers[0].reserve_through(FIX_ID_BASE).await.is_err());
    leasers[0].reserve_through(FIX_ID_BASE - 10).await.unwrap();
    assert!(leasers[0].lease(100).await.is_err());
    assert!(leasers[1].lease(9).await.is_err());
    assert_eq!(leasers[1].lease(8).await.unwrap(), FIX_ID_BASE - 9);
    assert!(leasers[1].lease(1).await.is_err());
}

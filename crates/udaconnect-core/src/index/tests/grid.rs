use super::*;
use crate::index::grid::{lockstep_partition_points, seconds, CellList};

proptest! {
    /// The searches of a cell list, through its sparse copy, after inserts in any order.
    #[test]
    fn cell_list_searches_equal_a_scan(
        times in prop::collection::vec(0..400i64, 0..300),
        probes in prop::collection::vec((0..420i64, 0..300usize), 1..40),
    ) {
        let rows: Vec<Row> = times
            .iter()
            .enumerate()
            .map(|(i, &t)| Row { t: t * S / 3, lat: 0.0, lon: 0.0, id_acc: i as i64, person: 0, at: 0 })
            .collect();
        let mut list = CellList::default();
        for (slot, r) in rows.iter().enumerate() {
            list.insert(slot as u32, (r.t, r.id()), &rows);
        }
        let rebuilt = CellList::new(list.slots.clone(), list.seconds.clone());
        prop_assert_eq!(&list.sparse, &rebuilt.sparse);
        let empty = CellList::default();
        let mut asks = Vec::new();
        for (t, lo) in probes {
            let t = t * S / 3;
            let want = list.slots.iter().position(|&s| rows[s as usize].t >= t).unwrap_or(list.slots.len());
            prop_assert_eq!(list.first_at(t, &rows), want);
            let lo = lo.min(want);
            prop_assert_eq!(list.first_at_after(lo, t, &rows), want);
            asks.push((&list, seconds(t)));
            asks.push((&empty, seconds(t)));
        }
        // In lockstep, more searches than one group holds, lists of every length mixed.
        let mut got = Vec::new();
        CellList::first_seconds_at(&asks, &mut got);
        let want: Vec<usize> = asks.iter().map(|(l, s)| l.first_second_at(*s)).collect();
        prop_assert_eq!(got, want);
    }

    /// Lockstep searches against `partition_point`, on slices with repeated values.
    #[test]
    fn lockstep_searches_equal_partition_point(
        slices in prop::collection::vec(prop::collection::vec(0..50u32, 0..70), 0..40),
        keys in prop::collection::vec(0..52u32, 40),
    ) {
        let sorted: Vec<Vec<u32>> = slices
            .into_iter()
            .map(|mut v| {
                v.sort_unstable();
                v
            })
            .collect();
        let asks: Vec<(&[u32], u32)> = sorted.iter().zip(&keys).map(|(v, &k)| (&v[..], k)).collect();
        let mut got = Vec::new();
        lockstep_partition_points(&asks, &mut got);
        let want: Vec<usize> = asks.iter().map(|(v, k)| v.partition_point(|x| x < k)).collect();
        prop_assert_eq!(got, want);
    }
}

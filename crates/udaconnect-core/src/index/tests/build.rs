use super::*;
use crate::contact::connections_oracle;
use crate::index::build::cuts_at_cells;

proptest! {
    #[test]
    fn bulk_load_equals_inserting_one_by_one(pts in arb_points(), person in 1..7i64, distance in 0.5..50.0f64, gap in 0..400i64) {
        let mut shuffled = pts.clone();
        shuffled.reverse();
        let bulk = ContactIndex::bulk(shuffled, 0, workers());
        let one = build(&pts);
        prop_assert_eq!(bulk.len(), one.len());
        for g in [None, Some(gap * S)] {
            let q = ConnectionQuery { person_id: person, window: Window::all(), distance_m: distance, max_time_gap_us: g };
            let a: Vec<Point> = answer(&bulk, &q);
            prop_assert_eq!(a, connections_oracle(&pts, &q));
        }
        let mut grown = bulk;
        for p in &pts {
            prop_assert!(!grown.insert(p), "already in");
        }
    }

    #[test]
    fn bulk_load_by_prepared_pages_equals_the_oracle(pts in arb_points(), cuts in proptest::collection::vec(0..200usize, 0..4), person in 1..7i64, distance in 0.5..50.0f64, gap in 0..400i64) {
        let mut builder = BulkBuilder::with_capacity(pts.len(), workers());
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(pts.len())).collect();
        cuts.push(pts.len());
        cuts.sort_unstable();
        let mut from = 0;
        for to in cuts {
            let page = PreparedPage::new(pts[from..to].iter().copied());
            prop_assert_eq!(page.len(), to - from);
            builder.push_page(&page);
            from = to;
        }
        let paged = builder.finish();
        prop_assert_eq!(paged.len(), pts.len());
        for g in [None, Some(gap * S)] {
            let q = ConnectionQuery { person_id: person, window: Window::all(), distance_m: distance, max_time_gap_us: g };
            let a: Vec<Point> = answer(&paged, &q);
            prop_assert_eq!(a, connections_oracle(&pts, &q));
        }
    }
}

#[test]
fn cuts_at_cells_split_rows_evenly_at_cell_bounds() {
    assert_eq!(cuts_at_cells(&[0], 2), vec![0, 0]);
    assert_eq!(cuts_at_cells(&[0, 10], 2), vec![0, 1]);
    assert_eq!(cuts_at_cells(&[0, 4, 6, 10], 2), vec![0, 2, 3]);
    assert_eq!(cuts_at_cells(&[0, 4, 6, 10], 1), vec![0, 3]);
    assert_eq!(cuts_at_cells(&[0, 1, 2, 3, 4], 4), vec![0, 1, 2, 3, 4]);
    assert_eq!(cuts_at_cells(&[0, 1, 2], 8), vec![0, 1, 2]);
    assert_eq!(cuts_at_cells(&[0, 9, 10], 3), vec![0, 1, 2]);
}

//! Batches of pings as the batch endpoint reads them: the body cut into NDJSON lines (and, when
//! it is a JSON array, into its items), every item validated, all or nothing.
#![no_main]

use std::collections::BTreeSet;

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use udaconnect_core::validate::{location_batch, new_location, MAX_LISTED};
use udaconnect_core::ErrorCode;
use udaconnect_fuzz::{check_messages, ndjson_items};

fuzz_target!(|data: &[u8]| {
    check_batch(ndjson_items(data), data.len());
    if let Ok(Value::Array(items)) = serde_json::from_slice(data) {
        check_batch(items.into_iter().map(Ok).collect(), data.len());
    }
});

/// The batch is accepted exactly when every item is, as the items one by one; refused, it
/// names every bad item by index (the first [`MAX_LISTED`] violations, then how many more) and
/// no good one, in index order within each class.
fn check_batch(items: Vec<Result<Value, String>>, input_len: usize) {
    let alone: Vec<_> = items
        .iter()
        .map(|item| item.as_ref().ok().map(new_location))
        .collect();
    let bad: BTreeSet<usize> = alone
        .iter()
        .enumerate()
        .filter(|(_, one)| !matches!(one, Some(Ok(_))))
        .map(|(i, _)| i)
        .collect();
    match location_batch(items).finish() {
        Ok(pings) => {
            assert!(bad.is_empty() && !alone.is_empty());
            assert_eq!(pings.len(), alone.len());
            for (ping, one) in pings.iter().zip(&alone) {
                assert_eq!(Some(ping), one.as_ref().and_then(|r| r.as_ref().ok()));
            }
        }
        Err(e) => {
            check_messages(&e, input_len);
            if alone.is_empty() {
                assert_eq!(e.to_string(), "invalid input: body: the batch is empty");
                return;
            }
            // An item that cannot be read at all, or has a field that cannot, is unreadable.
            let unreadable: Vec<bool> = alone
                .iter()
                .map(|one| match one {
                    None => true,
                    Some(r) => r.as_ref().is_err_and(|e| e.code() == ErrorCode::BadRequest),
                })
                .collect();
            let want = if unreadable.contains(&true) {
                ErrorCode::BadRequest
            } else {
                ErrorCode::InvalidInput
            };
            assert_eq!(e.code(), want);
            let mut listed = e.violations();
            let more = listed
                .last()
                .is_some_and(|v| v.field == "body" && v.message.starts_with("and "));
            if more {
                listed = &listed[..listed.len() - 1];
                assert_eq!(listed.len(), MAX_LISTED);
            }
            assert!(listed.len() <= MAX_LISTED);
            let indexes: Vec<usize> = listed.iter().map(|v| item_index(&v.field)).collect();
            let named: BTreeSet<usize> = indexes.iter().copied().collect();
            if more {
                assert!(named.is_subset(&bad), "{named:?}");
            } else {
                assert_eq!(named, bad);
            }
            // The unreadable items' violations first, then the others', each in index order.
            let split = indexes.partition_point(|&i| unreadable[i]);
            assert!(
                indexes[split..].iter().all(|&i| !unreadable[i]),
                "{indexes:?}"
            );
            assert!(
                indexes[..split].is_sorted() && indexes[split..].is_sorted(),
                "{indexes:?}"
            );
        }
    }
}

/// The item a violation names: `[3]` or `[3].latitude`.
fn item_index(field: &str) -> usize {
    let n = field.strip_prefix('[').and_then(|f| f.split(']').next());
    n.and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{field} names no item"))
}

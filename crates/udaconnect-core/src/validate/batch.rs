//! Batches of pings, all or nothing, every bad item named by its index.

use serde_json::Value;

use super::new_location;
use crate::error::{Error, FieldViolation, Findings, Result};
use crate::model::NewLocation;

/// Most pings one batch may carry.
pub const MAX_BATCH: usize = 100_000;

/// Violations an answer lists at most; the rest are counted (a batch of 100,000 bad items
/// would otherwise answer tens of megabytes naming each).
pub const MAX_LISTED: usize = 100;

/// A batch of pings read item by item: the items that passed, and the violations found (the
/// first [`MAX_LISTED`] of each kind kept, the others counted).
#[derive(Debug, Default)]
pub struct BatchCheck {
    /// Items that passed, with their index.
    pub valid: Vec<(usize, NewLocation)>,
    findings: Findings,
    /// Items read so far.
    items: usize,
    /// Violations found but not kept.
    unlisted: usize,
}

impl BatchCheck {
    /// Checks a batch of pings item by item, each already built or refused by its own
    /// constructor ([`NewLocation::parse`] for a transport that decoded the values, the JSON
    /// reading for JSON): every bad item is reported, its fields prefixed by its index
    /// (`[3].latitude`; a violation of the whole item is named `[3]`).
    pub fn of(items: impl IntoIterator<Item = Result<NewLocation>>) -> BatchCheck {
        let mut check = BatchCheck::default();
        for item in items {
            if !check.push(item) {
                break;
            }
        }
        check
    }

    /// Takes the next item; `false` once the batch is over its size (the violation is
    /// recorded, later items are not read).
    pub fn push(&mut self, item: Result<NewLocation>) -> bool {
        let i = self.items;
        if i >= MAX_BATCH {
            self.findings.invalid(
                "body",
                format!("more than {MAX_BATCH} items; split the batch"),
            );
            return false;
        }
        self.items += 1;
        match item {
            Ok(l) => self.valid.push((i, l)),
            Err(e) => {
                let unreadable = matches!(e, Error::BadRequest(_));
                for v in e.violations() {
                    let field = if v.field.is_empty() || v.field == "body" {
                        format!("[{i}]")
                    } else {
                        format!("[{i}].{}", v.field)
                    };
                    // Items come in index order: the first kept are the first of the batch.
                    let f = &mut self.findings;
                    let kept = if unreadable {
                        &f.unreadable
                    } else {
                        &f.invalid
                    };
                    if kept.len() >= MAX_LISTED {
                        self.unlisted += 1;
                    } else if unreadable {
                        f.unreadable(&field, v.message.clone());
                    } else {
                        f.invalid(&field, v.message.clone());
                    }
                }
            }
        }
        true
    }

    /// Adds a violation found later (an unknown person) for item `index`.
    pub fn invalid_item(&mut self, index: usize, field: &str, message: impl Into<String>) {
        self.findings
            .invalid(&format!("[{index}].{field}"), message);
        // Found out of order: kept sorted, the first by index stay.
        if self.findings.invalid.len() >= 2 * MAX_LISTED {
            self.unlisted += keep_first(&mut self.findings.invalid);
        }
    }

    /// All or nothing: the items when none failed, else the violations (the first
    /// [`MAX_LISTED`] by item, then how many more there are).
    pub fn finish(self) -> Result<Vec<NewLocation>> {
        let BatchCheck {
            valid,
            mut findings,
            items,
            mut unlisted,
        } = self;
        if items == 0 && findings.invalid.is_empty() {
            findings.invalid("body", "the batch is empty");
        }
        unlisted += keep_first(&mut findings.invalid);
        unlisted += keep_first(&mut findings.unreadable);
        findings
            .finish(Some(valid.into_iter().map(|(_, l)| l).collect()))
            .map_err(|mut e| {
                if let Error::BadRequest(listed) | Error::Invalid(listed) = &mut e {
                    if listed.len() > MAX_LISTED {
                        unlisted += listed.len() - MAX_LISTED;
                        listed.truncate(MAX_LISTED);
                    }
                    if unlisted > 0 {
                        listed.push(FieldViolation::new(
                            "body",
                            format!(
                                "and {unlisted} more violations, not listed (the first \
                                 {MAX_LISTED} are)"
                            ),
                        ));
                    }
                }
                e
            })
    }
}

/// Sorts violations by item and keeps the first [`MAX_LISTED`]; how many were dropped.
fn keep_first(violations: &mut Vec<FieldViolation>) -> usize {
    violations.sort_by_key(|v| item_index(&v.field));
    let dropped = violations.len().saturating_sub(MAX_LISTED);
    violations.truncate(MAX_LISTED);
    dropped
}

fn item_index(field: &str) -> usize {
    field
        .strip_prefix('[')
        .and_then(|f| f.split(']').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(usize::MAX)
}

/// Validates a batch of pings read as JSON item by item (see [`BatchCheck::of`]). Items that
/// could not even be read as JSON come as `Err`.
pub fn location_batch(
    items: impl IntoIterator<Item = std::result::Result<Value, String>>,
) -> BatchCheck {
    BatchCheck::of(items.into_iter().map(|item| location_item(item.as_ref())))
}

/// One item of a batch read as JSON, or why it could not be read (see [`location_batch`]).
pub fn location_item(item: std::result::Result<&Value, &String>) -> Result<NewLocation> {
    match item {
        Ok(v) => new_location(v),
        Err(e) => Err(Error::bad_request("", format!("malformed JSON: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::fields;
    use serde_json::json;

    #[test]
    fn batches_report_every_bad_item_by_index() {
        let items = vec![
            Ok(json!({"person_id": 1, "latitude": 1, "longitude": 1})),
            Ok(json!({"person_id": 1, "latitude": 100, "longitude": 1})),
            Err("eof".to_string()),
            Ok(json!({"person_id": 1, "latitude": 1, "longitude": "east"})),
            Ok(json!(7)),
        ];
        let e = location_batch(items).finish().unwrap_err();
        assert!(matches!(e, Error::BadRequest(_)));
        assert_eq!(fields(&e), ["[2]", "[3].longitude", "[4]", "[1].latitude"]);
        let mut check = location_batch(vec![
            Ok(json!({"person_id": 1, "latitude": 1, "longitude": 1})),
            Ok(json!({"person_id": 1, "latitude": 100, "longitude": 1})),
        ]);
        check.invalid_item(0, "person_id", "no person with id 1");
        let e = check.finish().unwrap_err();
        assert!(matches!(e, Error::Invalid(_)));
        assert_eq!(fields(&e), ["[0].person_id", "[1].latitude"]);
        assert_eq!(
            fields(&location_batch(Vec::new()).finish().unwrap_err()),
            ["body"]
        );
        let one = location_batch(vec![Ok(
            json!({"person_id": 1, "latitude": 1, "longitude": 1}),
        )]);
        assert_eq!(one.finish().unwrap().len(), 1);
    }

    /// Items a transport built itself are named by index as JSON items are.
    #[test]
    fn directly_built_items_are_named_by_index() {
        let check = BatchCheck::of([
            NewLocation::parse(1, 1.0, 1.0, None),
            NewLocation::parse(0, f64::NAN, 200.0, None),
            NewLocation::parse(2, 2.0, 2.0, None),
        ]);
        assert_eq!(check.valid.len(), 2);
        let e = check.finish().unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid input: [1].person_id: 0 is not an id (1 to 2^53-1); [1].latitude: must be \
             a finite number; [1].longitude: 200 is outside [-180, 180]"
        );
        let e = BatchCheck::of((0..=MAX_BATCH).map(|_| NewLocation::parse(1, 1.0, 1.0, None)))
            .finish()
            .unwrap_err();
        assert_eq!(fields(&e), ["body"]);
    }

    /// A batch of 100,000 bad items lists the first 100 violations, in item order, and how
    /// many more there are; people found unknown later are merged in by item.
    #[test]
    fn a_batch_of_bad_items_lists_the_first_hundred() {
        let bad = |i: usize| {
            NewLocation::parse(1, if i.is_multiple_of(2) { 91.0 } else { 1.0 }, 1.0, None)
        };
        let mut check = BatchCheck::of((0..MAX_BATCH).map(bad));
        assert_eq!(check.valid.len(), MAX_BATCH / 2);
        for i in (1..MAX_BATCH).step_by(2) {
            check.invalid_item(i, "person_id", "no person with id 1");
        }
        let e = check.finish().unwrap_err();
        let listed = e.violations();
        assert_eq!(listed.len(), MAX_LISTED + 1);
        let want: Vec<String> = (0..MAX_LISTED)
            .map(|i| {
                if i.is_multiple_of(2) {
                    format!("[{i}].latitude")
                } else {
                    format!("[{i}].person_id")
                }
            })
            .collect();
        assert_eq!(&fields(&e)[..MAX_LISTED], &want[..]);
        assert_eq!(
            listed[MAX_LISTED].message,
            format!(
                "and {} more violations, not listed (the first 100 are)",
                MAX_BATCH - MAX_LISTED
            )
        );
        assert!(e.to_string().len() < 10_000, "{}", e.to_string().len());

        // Unreadable items win, and are capped the same way.
        let e = location_batch((0..1000).map(|_| Err("eof".to_string())))
            .finish()
            .unwrap_err();
        assert!(matches!(e, Error::BadRequest(_)));
        assert_eq!(e.violations().len(), MAX_LISTED + 1);
        assert_eq!(e.violations()[MAX_LISTED].field, "body");
    }
}

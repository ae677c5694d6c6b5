//! Batches of pings, all or nothing, every bad item named by its index.

use serde_json::Value;

use super::new_location;
use crate::error::{Error, Findings, Result};
use crate::model::NewLocation;

/// Most pings one batch may carry.
pub const MAX_BATCH: usize = 100_000;

/// A batch of pings read item by item: the items that passed, and every violation found.
#[derive(Debug, Default)]
pub struct BatchCheck {
    /// Items that passed, with their index.
    pub valid: Vec<(usize, NewLocation)>,
    findings: Findings,
}

impl BatchCheck {
    /// Checks a batch of pings item by item, each already built or refused by its own
    /// constructor ([`NewLocation::parse`] for a transport that decoded the values, the JSON
    /// reading for JSON): every bad item is reported, its fields prefixed by its index
    /// (`[3].latitude`; a violation of the whole item is named `[3]`).
    pub fn of(items: impl IntoIterator<Item = Result<NewLocation>>) -> BatchCheck {
        let mut check = BatchCheck::default();
        let f = &mut check.findings;
        for (i, item) in items.into_iter().enumerate() {
            if i >= MAX_BATCH {
                f.invalid(
                    "body",
                    format!("more than {MAX_BATCH} items; split the batch"),
                );
                break;
            }
            match item {
                Ok(l) => check.valid.push((i, l)),
                Err(e) => {
                    let unreadable = matches!(e, Error::BadRequest(_));
                    for v in e.violations() {
                        let field = if v.field.is_empty() || v.field == "body" {
                            format!("[{i}]")
                        } else {
                            format!("[{i}].{}", v.field)
                        };
                        if unreadable {
                            f.unreadable(&field, v.message.clone());
                        } else {
                            f.invalid(&field, v.message.clone());
                        }
                    }
                }
            }
        }
        if check.valid.is_empty() && f.unreadable.is_empty() && f.invalid.is_empty() {
            f.invalid("body", "the batch is empty");
        }
        check
    }

    /// Adds a violation found later (an unknown person) for item `index`.
    pub fn invalid_item(&mut self, index: usize, field: &str, message: impl Into<String>) {
        self.findings
            .invalid(&format!("[{index}].{field}"), message);
    }

    /// All or nothing: the items when none failed, else every violation.
    pub fn finish(self) -> Result<Vec<NewLocation>> {
        let BatchCheck {
            valid,
            mut findings,
        } = self;
        findings.invalid.sort_by_key(|v| item_index(&v.field));
        findings.unreadable.sort_by_key(|v| item_index(&v.field));
        findings.finish(Some(valid.into_iter().map(|(_, l)| l).collect()))
    }
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
    BatchCheck::of(items.into_iter().map(|item| match item {
        Ok(v) => new_location(&v),
        Err(e) => Err(Error::bad_request("", format!("malformed JSON: {e}"))),
    }))
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
}

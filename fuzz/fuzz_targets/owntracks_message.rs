//! OwnTracks' HTTP messages, any body: never a panic; a location is a ping every transport
//! would take, its extras within their bounds; every other message is ignored, never refused;
//! a refusal names only the fields a location has.
#![no_main]

use libfuzzer_sys::fuzz_target;
use udaconnect_core::tracker::{owntracks_message, OwnTracks};
use udaconnect_fuzz::{acknowledge, check_extras, check_ping, check_ping_error};

fuzz_target!(|data: &[u8]| {
    match owntracks_message(data) {
        Ok(OwnTracks::Location { fix, .. }) => {
            let ping = fix.ping(1).expect("a fix is a valid ping");
            check_ping(&ping);
            check_extras(&fix.extras);
            acknowledge(&ping, 1);
        }
        Ok(OwnTracks::Ignored { kind }) => assert_ne!(kind, "location"),
        Err(e) => check_ping_error(&e, data.len(), &["body", "lat", "lon", "tst"]),
    }
});

//! The query side: whom did a person meet, where and when, and the venue live.
//!
//! - [`engine`]: the [`ContactEngine`](engine::ContactEngine) port and the rows of an answer.
//! - [`memory`]: the in-memory index engine; [`store`]: the engines that read the store.
//! - [`answer`]: answers written as JSON directly (streamed connection answers, contacts).
//! - [`http`]: connection-api's HTTP handlers (connection, contacts, summary).
//! - [`consent`]: what an attendee may see of the people they met (names, handles, e-mails).
//! - [`reveal`]: asking to exchange e-mail addresses, hiding a contact, and their list.
//! - [`evidence`]: why a contact is one: the reader's pings that matched.
//! - [`export`]: everything held about the caller, streamed as one JSON document.
//! - [`limits`]: how many heavy queries run and wait, their deadline, the answer size.
//! - [`live`]: the venue live (server-sent events, dots, heat, people per room) and the plan.
//! - [`crowd`]: what organizers see of the crowd: counts and dots among k people at least.
//! - [`workers`]: the threads (rayon's pool) the index splits its work over.

pub mod answer;
pub mod consent;
pub mod crowd;
pub mod engine;
pub mod evidence;
pub mod export;
pub mod http;
pub mod limits;
pub mod live;
pub mod memory;
pub mod reveal;
pub mod store;
pub mod workers;

//! The distributed mode end to end, where it differs from `serve`: every role its own process,
//! on a real Kafka-protocol broker and a real PostgreSQL/PostGIS, with failures made real
//! (processes killed with SIGKILL, the broker killed, the database cut off; all of it in one run
//! in `chaos`), the topic replayed, the original producers' records, and tracker-mqtt's session
//! kept at the MQTT broker while it is down. The HTTP and gRPC contract itself is the `api` suite's,
//! played against this stack and `serve` alike.

mod chaos;
mod erasure;
mod gateway;
mod harness;
mod mqtt;
mod outages;
mod rebuild;
mod retention;
mod startup;

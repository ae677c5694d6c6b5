//! `--retention` in the distributed stack: location-consumer removes old pings from
//! PostgreSQL on its schedule and sets the Kafka topics' `retention.ms` at start. (The job
//! under a clock a test sets is `serve`'s test; here the machine's clock runs.)

use std::path::Path;
use std::time::Duration;

use chrono::{TimeDelta, Utc};
use serde_json::json;
use udaconnect_core::record::{LOCATION_DLQ_TOPIC, LOCATION_TOPIC};
use udaconnect_testkit::process::Stack;

use crate::harness::{create_person, eventually, onlooker, post_acked, stored, Broker, Db, BIN};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn old_pings_leave_postgres_and_the_topics_get_the_retention() {
    let broker = Broker::start().await;
    let db = Db::create().await;
    let env = [
        ("UDACONNECT_RETENTION", "1h"),
        ("UDACONNECT_RETENTION_EVERY", "1s"),
    ];
    let stack =
        Stack::start_seeded_with_env(Path::new(BIN), &db.url, &broker, &env, || async {}).await;
    let web = stack.web.base();
    let who = create_person(&web, "Ida").await;
    let at = |ago: TimeDelta| {
        json!({"person_id": who, "latitude": 1.0, "longitude": 2.0,
               "creation_time": (Utc::now() - ago).to_rfc3339()})
    };
    // One person's pings keep their order on the topic: once the later is stored, the earlier
    // was stored before it.
    let old = post_acked(&web, &at(TimeDelta::hours(2))).await;
    let fresh = post_acked(&web, &at(TimeDelta::minutes(1))).await;
    eventually("the fresh ping stored", Duration::from_secs(30), || {
        stored(&web, fresh)
    })
    .await;
    eventually("the old ping removed", Duration::from_secs(30), || async {
        (!db.location_ids().await.contains(&old)).then_some(())
    })
    .await;
    assert!(db.location_ids().await.contains(&fresh));
    assert!(stored(&web, fresh).await.is_some());

    let log = onlooker(&broker);
    // tansu 0.6 refuses topic configuration altogether (UnsupportedFeature): then the
    // stack must still have started and removed from PostgreSQL, as above. A broker that takes
    // it must report location-consumer's setting.
    let probe = udaconnect_testkit::unique("retention-probe");
    let probed = log
        .set_retention(&[&probe], Duration::from_secs(3600))
        .await
        .expect("a broker answers");
    if let Err(why) = &probed[0].outcome {
        eprintln!("the broker takes no topic configuration ({why}): its check is left out");
        return;
    }
    for topic in [LOCATION_TOPIC, LOCATION_DLQ_TOPIC] {
        let ms = eventually("the topic's retention", Duration::from_secs(30), || async {
            log.retention_ms(topic).await.ok().flatten()
        })
        .await;
        assert_eq!(ms, "3600000", "{topic}");
    }
}

//! The gRPC services against a real server: the original `/LocationService/Create` wire
//! contract, the v1 service with its bulk stream, health and reflection.

use serde_json::Value;
use udaconnect_server::ingest::grpc::proto;

use udaconnect_server::roles::Role;

use crate::suite::Api;

use proto::original::location_service_client::LocationServiceClient;
use proto::original::LocationMessage;
use proto::v1::location_ingest_client::LocationIngestClient;
use proto::v1::{BatchResult, Ping, PingBatch};

/// The names of the services reflection `$version` (`v1` or `v1alpha`, alike but for their
/// types) lists over `$channel`.
macro_rules! listed_services {
    ($version:ident, $channel:expr) => {{
        use tonic_reflection::pb::$version::server_reflection_client::ServerReflectionClient;
        use tonic_reflection::pb::$version::server_reflection_request::MessageRequest;
        use tonic_reflection::pb::$version::server_reflection_response::MessageResponse;
        use tonic_reflection::pb::$version::ServerReflectionRequest;
        let request = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        };
        let mut answers = ServerReflectionClient::new($channel)
            .server_reflection_info(futures_util::stream::iter([request]))
            .await
            .unwrap()
            .into_inner();
        let answer = answers.message().await.unwrap().unwrap();
        let Some(MessageResponse::ListServicesResponse(list)) = answer.message_response else {
            panic!("no service list over {}", stringify!($version));
        };
        list.service
            .into_iter()
            .map(|s| s.name)
            .collect::<Vec<String>>()
    }};
}

/// The location stored just before a new HTTP ping (the original Create answers no id; the
/// next ping takes the next id of the same block), once stored.
async fn stored_before_next_ping(api: &Api) -> Value {
    let ping = serde_json::json!({"person_id": 5, "latitude": 1, "longitude": 1});
    let next: Value = api
        .post_json("/api/locations", &ping)
        .await
        .json()
        .await
        .unwrap();
    api.stored_location(next["id"].as_i64().unwrap() - 1).await
}

/// Streams `batches` to the v1 bulk ingest and collects every answer.
async fn ingest_all(
    client: &mut LocationIngestClient<tonic::transport::Channel>,
    batches: impl IntoIterator<Item = PingBatch>,
) -> Vec<BatchResult> {
    let stream = futures_util::stream::iter(batches.into_iter().collect::<Vec<_>>());
    let mut results = client.ingest(stream).await.unwrap().into_inner();
    let mut answers = Vec::new();
    while let Some(r) = results.message().await.unwrap() {
        answers.push(r);
    }
    answers
}

pub async fn original_create_keeps_its_wire_contract(api: Api) {
    let mut client = LocationServiceClient::connect(api.grpc.clone())
        .await
        .unwrap();
    let sent = LocationMessage {
        person_id: 5,
        latitude: 37.553_63,
        longitude: -122.290_883,
    };
    let mut request = tonic::Request::new(sent);
    request
        .metadata_mut()
        .insert("x-correlation-id", "grpc-test-1".parse().unwrap());
    let echoed = client.create(request).await.unwrap().into_inner();
    assert_eq!(
        echoed, sent,
        "the original answers with the message it took"
    );

    // Stored with the float widened exactly, as the original's Python did. The original answer
    // carries no id: the next HTTP ping takes the next id of the same block.
    let l = stored_before_next_ping(&api).await;
    assert_eq!(l["person_id"], 5);
    assert_eq!(l["latitude"].as_f64(), Some(f64::from(37.553_63_f32)));
    assert_eq!(l["longitude"].as_f64(), Some(f64::from(-122.290_883_f32)));

    for (bad, field) in [
        (
            // Fits neither order: refused as sent, not swapped.
            LocationMessage {
                person_id: 5,
                latitude: 91.0,
                longitude: 100.0,
            },
            "latitude",
        ),
        (
            LocationMessage {
                person_id: 5,
                latitude: 0.0,
                longitude: f32::NAN,
            },
            "longitude",
        ),
        (
            LocationMessage {
                person_id: 0,
                latitude: 0.0,
                longitude: 0.0,
            },
            "person_id",
        ),
        (
            LocationMessage {
                person_id: 4242,
                latitude: 0.0,
                longitude: 0.0,
            },
            "no person with id 4242",
        ),
    ] {
        let status = client.create(bad).await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::InvalidArgument, "{bad:?}");
        assert!(status.message().contains(field), "{}", status.message());
    }
}

/// The original sample client sends latitude and longitude swapped, and the original server
/// took them: so does this one, putting them right and counting it.
pub async fn original_create_repairs_swapped_axes(api: Api) {
    let location_api = api.at(Role::LocationApi);
    let repaired = || async {
        let text = location_api.get("/metrics").await.text().await.unwrap();
        text.lines()
            .find_map(|l| {
                l.strip_prefix(r#"udaconnect_legacy_axes_repaired_total{source="grpc"} "#)
            })
            .map_or(0.0, |v| v.trim().parse::<f64>().unwrap())
    };
    let before = repaired().await;
    let mut client = LocationServiceClient::connect(api.grpc.clone())
        .await
        .unwrap();
    let swapped = LocationMessage {
        person_id: 5,
        latitude: -122.290_883,
        longitude: 37.553_63,
    };
    for _ in 0..2 {
        let echoed = client.create(swapped).await.unwrap().into_inner();
        assert_eq!(echoed, swapped, "the answer is the message as it came");
    }
    let l = stored_before_next_ping(&api).await;
    assert_eq!(l["latitude"].as_f64(), Some(f64::from(37.553_63_f32)));
    assert_eq!(l["longitude"].as_f64(), Some(f64::from(-122.290_883_f32)));
    assert_eq!(repaired().await, before + 2.0);
}

pub async fn v1_create_carries_doubles_and_time(api: Api) {
    let mut client = LocationIngestClient::connect(api.grpc.clone())
        .await
        .unwrap();
    let stored = client
        .create(Ping {
            person_id: 6,
            latitude: 35.058_513_6,
            longitude: -106.571_956_6,
            creation_time: Some(prost_types::Timestamp {
                seconds: 1_594_117_026,
                nanos: 123_456_789,
            }),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stored.person_id, 6);
    assert_eq!(stored.latitude, 35.058_513_6);
    // Kept to the microsecond, as everywhere.
    assert_eq!(stored.creation_time.unwrap().nanos, 123_456_000);
    let l = api.stored_location(stored.id).await;
    assert_eq!(l["latitude"], 35.058_513_6);
    assert_eq!(l["longitude"], -106.571_956_6);
    assert_eq!(l["creation_time"], "2020-07-07T10:17:06.123456Z");

    let status = client
        .create(Ping {
            person_id: 6,
            latitude: 1.0,
            longitude: 1.0,
            creation_time: Some(prost_types::Timestamp {
                seconds: 0,
                nanos: -5,
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(status.message().contains("creation_time"));
}

pub async fn v1_bulk_stream_answers_each_batch_in_order(api: Api) {
    let mut client = LocationIngestClient::connect(api.grpc.clone())
        .await
        .unwrap();
    let ping = |person_id: i64, latitude: f64| Ping {
        person_id,
        latitude,
        longitude: 10.0,
        creation_time: None,
    };
    let batches: Vec<PingBatch> = (0..20)
        .map(|i| PingBatch {
            sequence: 100 + i,
            pings: if i == 7 {
                vec![ping(1, 10.0), ping(77, 10.0), ping(5, 100.0)]
            } else {
                (0..50).map(|k| ping(1, k as f64 / 100.0)).collect()
            },
        })
        .collect();
    let answers = ingest_all(&mut client, batches).await;
    assert_eq!(answers.len(), 20);
    for (i, a) in answers.iter().enumerate() {
        assert_eq!(a.sequence, 100 + i as u64);
        if i == 7 {
            assert!(a.ids.is_empty(), "a rejected batch stores nothing");
            let fields: Vec<&str> = a.violations.iter().map(|v| v.field.as_str()).collect();
            assert_eq!(fields, ["[1].person_id", "[2].latitude"]);
        } else {
            assert_eq!(a.ids.len(), 50);
            assert!(a.violations.is_empty());
        }
    }
    let all: Vec<i64> = answers.iter().flat_map(|a| a.ids.clone()).collect();
    let mut distinct = all.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert_eq!(distinct.len(), 19 * 50);
    api.stored_location(*all.last().unwrap()).await;
}

pub async fn health_and_reflection_are_served(api: Api) {
    let channel = tonic::transport::Channel::from_shared(api.grpc.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
    for service in [
        "",
        "LocationService",
        "udaconnect.location.v1.LocationIngest",
    ] {
        let r = health
            .check(tonic_health::pb::HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            r.status,
            tonic_health::pb::health_check_response::ServingStatus::Serving as i32,
            "{service}"
        );
    }

    let names = listed_services!(v1, channel.clone());
    assert!(names.contains(&"LocationService".to_string()), "{names:?}");
    assert!(
        names.contains(&"udaconnect.location.v1.LocationIngest".to_string()),
        "{names:?}"
    );
    // Older clients (grpcurl before 1.8) know only the v1alpha service.
    let alpha_names = listed_services!(v1alpha, channel);
    assert!(
        alpha_names.contains(&"LocationService".to_string()),
        "{alpha_names:?}"
    );
}

/// A protobuf time is held to the years every other transport accepts, 1970 to 9999.
pub async fn v1_times_outside_the_supported_years_are_refused(api: Api) {
    let mut client = LocationIngestClient::connect(api.grpc.clone())
        .await
        .unwrap();
    let at = |seconds: i64| Ping {
        person_id: 6,
        latitude: 1.0,
        longitude: 1.0,
        creation_time: Some(prost_types::Timestamp { seconds, nanos: 0 }),
    };
    for seconds in [-1, 253_402_300_800] {
        let status = client.create(at(seconds)).await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::InvalidArgument, "{seconds}");
        assert!(
            status.message().contains("creation_time: ")
                && status
                    .message()
                    .ends_with("is outside the years 1970 to 9999"),
            "{}",
            status.message()
        );
    }
    let stored = client.create(at(0)).await.unwrap().into_inner();
    assert_eq!(stored.creation_time.unwrap().seconds, 0);
    let answers = ingest_all(
        &mut client,
        [PingBatch {
            sequence: 1,
            pings: vec![at(100), at(-100)],
        }],
    )
    .await;
    let answer = &answers[0];
    assert!(answer.ids.is_empty());
    let fields: Vec<&str> = answer.violations.iter().map(|v| v.field.as_str()).collect();
    assert_eq!(fields, ["[1].creation_time"]);
}

/// gRPC pings are checked by the same rules as JSON ones, with the same messages: a value that
/// is no finite number is named under its field (in a batch, under the item's), every bad
/// field at once; a `-0.0` is stored as `0.0`.
pub async fn v1_pings_meet_the_shared_rules_field_by_field(api: Api) {
    let mut client = LocationIngestClient::connect(api.grpc.clone())
        .await
        .unwrap();
    let ping = |person_id: i64, latitude: f64, longitude: f64| Ping {
        person_id,
        latitude,
        longitude,
        creation_time: None,
    };
    let status = client.create(ping(0, f64::NAN, 200.0)).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert_eq!(
        status.message(),
        "invalid input: person_id: 0 is not an id (1 to 2^53-1); latitude: must be a finite \
         number; longitude: 200 is outside [-180, 180]"
    );
    let answers = ingest_all(
        &mut client,
        [PingBatch {
            sequence: 1,
            pings: vec![ping(5, 1.0, 1.0), ping(5, 1.0, f64::INFINITY)],
        }],
    )
    .await;
    let answer = &answers[0];
    assert!(answer.ids.is_empty());
    let violations: Vec<(&str, &str)> = answer
        .violations
        .iter()
        .map(|v| (v.field.as_str(), v.message.as_str()))
        .collect();
    assert_eq!(violations, [("[1].longitude", "must be a finite number")]);

    let stored = client
        .create(ping(5, -0.0, -0.0))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stored.latitude.to_bits(), 0.0f64.to_bits());
    assert_eq!(stored.longitude.to_bits(), 0.0f64.to_bits());
}

/// Pings taken over gRPC and over HTTP meet in one connection answer: the stream's pings of
/// `b` next to `a`'s HTTP ping are `a`'s connections.
pub async fn grpc_and_http_pings_meet_in_connections(api: Api) {
    let a = api.create_person("Ada").await["id"].as_i64().unwrap();
    let b = api.create_person("Bo").await["id"].as_i64().unwrap();
    api.ping(a, 37.55363, -122.290883, "2020-07-07T10:37:06Z")
        .await;
    let mut client = LocationIngestClient::connect(api.grpc.clone())
        .await
        .unwrap();
    let ping = |latitude: f64, secs: i64| Ping {
        person_id: b,
        latitude,
        longitude: -122.290883,
        creation_time: Some(prost_types::Timestamp {
            seconds: 1_594_118_226 + secs,
            nanos: 0,
        }),
    };
    let batches = vec![
        PingBatch {
            sequence: 1,
            pings: vec![ping(37.55363, 1)],
        },
        PingBatch {
            sequence: 2,
            pings: vec![ping(37.553631, 4)],
        },
    ];
    let mut ids = Vec::new();
    for r in ingest_all(&mut client, batches).await {
        assert!(r.violations.is_empty(), "{r:?}");
        ids.extend(r.ids);
    }
    assert_eq!(ids.len(), 2);
    for id in &ids {
        api.stored_location(*id).await;
    }
    let r = api
        .get(&format!(
            "/api/persons/{a}/connection?start_date=2020-01-01&end_date=2020-12-30&distance=5"
        ))
        .await;
    assert_eq!(r.status(), 200);
    let conn: Value = r.json().await.unwrap();
    let found = crate::suite::ids(&conn);
    for id in &ids {
        assert!(found.contains(id), "{conn}");
    }
}

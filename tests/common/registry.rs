//! A stand-in for a Confluent Schema Registry, shared by the tests that need one.
//!
//! No Schema Registry can be installed on these machines, so [`Registry`] stands in for one: a
//! small HTTP/1.1 server (or HTTPS, with [`self_signed`]'s certificate) answering the two
//! endpoints the engine uses, as Confluent's API reference describes them (`POST
//! /subjects/{subject}/versions` with `{"schema", "schemaType"}` answering `{"id"}`, the same id
//! for a schema registered before; `GET /schemas/ids/{id}` answering `{"schema", "schemaType"}`,
//! or 404 with error code 40403; 401 without the basic auth it was told to require; the
//! `application/vnd.schemaregistry.v1+json` media type). It is not a registry: it keeps no
//! versions and checks no compatibility.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

pub const MEDIA_TYPE: &str = "application/vnd.schemaregistry.v1+json";

/// What the stand-in registry holds: schema texts by id, the id of each (subject, text), and
/// the content type of every request that carried a body.
#[derive(Default)]
pub struct Held {
    pub schemas: Vec<(String, String)>,
    pub subjects: HashMap<String, u32>,
    pub content_types: Vec<String>,
    /// The `Authorization` header every request must carry, when set.
    pub authorization: Option<String>,
}

/// The stand-in registry: HTTP/1.1 with keep-alive, a thread per connection.
pub struct Registry {
    pub url: String,
    pub held: Arc<Mutex<Held>>,
}

impl Registry {
    /// Over plain HTTP, without credentials.
    pub fn start() -> Self {
        Self::start_with(None, None)
    }

    /// Over https with `tls`'s certificate when given; answering 401 to a request without the
    /// basic-auth `user_info` when given.
    pub fn start_with(tls: Option<native_tls::TlsAcceptor>, user_info: Option<&str>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind registry");
        let scheme = if tls.is_some() { "https" } else { "http" };
        let url = format!("{scheme}://{}", listener.local_addr().expect("addr"));
        let held = Arc::new(Mutex::new(Held {
            authorization: user_info
                .map(|u| format!("Basic {}", openssl::base64::encode_block(u.as_bytes()))),
            ..Held::default()
        }));
        let shared = held.clone();
        std::thread::spawn(move || {
            // a thread per connection: clients keep theirs open between requests
            for stream in listener.incoming().flatten() {
                let held = shared.clone();
                let tls = tls.clone();
                std::thread::spawn(move || match tls {
                    // a handshake the client refused ends the connection, nothing else
                    Some(tls) => {
                        if let Ok(stream) = tls.accept(stream) {
                            serve(stream, &held);
                        }
                    }
                    None => serve(stream, &held),
                });
            }
        });
        Self { url, held }
    }

    /// The id registered under `subject`, if any.
    pub fn subject_id(&self, subject: &str) -> Option<u32> {
        self.held.lock().unwrap().subjects.get(subject).copied()
    }

    /// Holds `text` as a schema of `kind` (`AVRO`, `JSON`), as a producer's serializer would
    /// have registered it, and returns its id.
    pub fn hold(&self, kind: &str, text: &str) -> u32 {
        let mut held = self.held.lock().unwrap();
        held.schemas.push((kind.into(), text.into()));
        held.schemas.len() as u32
    }
}

/// Answers requests on one connection until the client closes it.
fn serve<S: Read + Write>(stream: S, held: &Mutex<Held>) {
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        let (mut length, mut content_type, mut authorization) = (0usize, None, None);
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
                break;
            }
            let (name, value) = h.split_once(':').unwrap_or((&h, ""));
            match name.trim().to_ascii_lowercase().as_str() {
                "content-length" => length = value.trim().parse().unwrap_or(0),
                "content-type" => content_type = Some(value.trim().to_string()),
                "authorization" => authorization = Some(value.trim().to_string()),
                _ => {}
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let expected = held.lock().unwrap().authorization.clone();
        let (status, answer) = match expected.is_some() && expected != authorization {
            true => (401, json!({"error_code": 401, "message": "Unauthorized"})),
            false => answer(method, path, &body, content_type, held),
        };
        let text = answer.to_string();
        let reply = format!(
            "HTTP/1.1 {status} X\r\nContent-Type: {MEDIA_TYPE}\r\nContent-Length: {}\r\n\r\n{text}",
            text.len()
        );
        let out = reader.get_mut();
        if out
            .write_all(reply.as_bytes())
            .and_then(|()| out.flush())
            .is_err()
        {
            return;
        }
    }
}

fn answer(
    method: &str,
    path: &str,
    body: &[u8],
    content_type: Option<String>,
    held: &Mutex<Held>,
) -> (u16, Value) {
    let mut held = held.lock().unwrap();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (method, segments.as_slice()) {
        ("POST", ["subjects", subject, "versions"]) => {
            held.content_types.extend(content_type);
            let Ok(request) = serde_json::from_slice::<Value>(body) else {
                return (
                    422,
                    json!({"error_code": 42201, "message": "Invalid schema"}),
                );
            };
            let text = request["schema"].as_str().unwrap_or_default().to_string();
            let kind = request["schemaType"].as_str().unwrap_or("AVRO").to_string();
            let id = match held
                .schemas
                .iter()
                .position(|s| *s == (kind.clone(), text.clone()))
            {
                Some(i) => i as u32 + 1,
                None => {
                    held.schemas.push((kind, text));
                    held.schemas.len() as u32
                }
            };
            held.subjects.insert((*subject).to_string(), id);
            (200, json!({ "id": id }))
        }
        ("GET", ["schemas", "ids", id]) => {
            let found = id
                .parse::<usize>()
                .ok()
                .and_then(|i| i.checked_sub(1))
                .and_then(|i| held.schemas.get(i));
            match found {
                Some((kind, text)) => (200, json!({ "schema": text, "schemaType": kind })),
                None => (
                    404,
                    json!({"error_code": 40403, "message": "Schema not found"}),
                ),
            }
        }
        _ => (
            404,
            json!({"error_code": 404, "message": "HTTP 404 Not Found"}),
        ),
    }
}

/// A self-signed certificate for 127.0.0.1 and localhost: (the server's identity, the
/// certificate's PEM for the client to trust).
pub fn self_signed() -> (native_tls::Identity, String) {
    use openssl::asn1::Asn1Time;
    use openssl::bn::BigNum;
    use openssl::ec::{EcGroup, EcKey};
    use openssl::hash::MessageDigest;
    use openssl::nid::Nid;
    use openssl::pkey::PKey;
    use openssl::x509::extension::{BasicConstraints, SubjectAlternativeName};
    use openssl::x509::{X509Builder, X509NameBuilder};

    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
    let key = PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap();
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_nid(Nid::COMMONNAME, "stand-in registry")
        .unwrap();
    let name = name.build();
    let mut cert = X509Builder::new().unwrap();
    cert.set_version(2).unwrap();
    cert.set_serial_number(&BigNum::from_u32(1).unwrap().to_asn1_integer().unwrap())
        .unwrap();
    cert.set_subject_name(&name).unwrap();
    cert.set_issuer_name(&name).unwrap();
    cert.set_pubkey(&key).unwrap();
    cert.set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    cert.set_not_after(&Asn1Time::days_from_now(1).unwrap())
        .unwrap();
    cert.append_extension(BasicConstraints::new().critical().ca().build().unwrap())
        .unwrap();
    let san = SubjectAlternativeName::new()
        .ip("127.0.0.1")
        .dns("localhost")
        .build(&cert.x509v3_context(None, None))
        .unwrap();
    cert.append_extension(san).unwrap();
    cert.sign(&key, MessageDigest::sha256()).unwrap();
    let pem = cert.build().to_pem().unwrap();
    let identity = native_tls::Identity::from_pkcs8(&pem, &key.private_key_to_pem_pkcs8().unwrap())
        .expect("identity");
    (identity, String::from_utf8(pem).unwrap())
}

/// `body` in the Confluent wire format with schema id `id`.
pub fn framed(id: u32, body: &[u8]) -> Vec<u8> {
    [&trendcast::vocab::wire::frame(id)[..], body].concat()
}

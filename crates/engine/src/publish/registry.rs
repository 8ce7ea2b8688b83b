//! A Confluent Schema Registry client: registers the output schemas, so that outputs can be framed
//! in the registry's wire format, and reads a schema back by its id.
//!
//! Why register at all: a consumer using a registry-aware deserializer (Confluent's
//! `KafkaJsonSchemaDeserializer`, Kafka Connect, ksqlDB) reads the schema id in front of each value
//! and fetches the schema by it; plain JSON gives it nothing to fetch. The engine registers each
//! output's JSON Schema (`schemas/`, compiled in) under `<topic>-value` (the registry's default
//! `TopicNameStrategy`) once at start, and frames every output value with the id it got
//! ([`super::Publisher::framed`]). Registering a schema a subject already holds returns the same
//! id, so restarts add no versions; a schema the subject's compatibility rule refuses stops the
//! start with the registry's answer.
//!
//! Only the few REST endpoints used are spoken: `POST /subjects/{subject}/versions` and
//! `GET /schemas/ids/{id}`, with the registry's media type.
//!
//! Hosted registries (Confluent Cloud, most company deployments) sit behind `https://` with HTTP
//! basic auth, the API key and secret as user and password (Confluent clients' `basic.auth.user.info`).
//! TLS goes through the system's OpenSSL (native-tls), which librdkafka links already, so no
//! second TLS stack is built; its trust store is the system's, plus the CA certificates of
//! [`RegistryAccess::ca_pem`] for a registry whose certificate a private CA signed.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;

use serde::Deserialize;
use serde_json::json;

/// The registry's media type, sent with each request.
const MEDIA_TYPE: &str = "application/vnd.schemaregistry.v1+json";

/// Why the registry could not be used.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// No answer (refused, timed out, not HTTP, a TLS handshake that failed).
    #[error("schema registry at {url} could not be reached: {reason}")]
    Unreachable {
        /// The request's URL.
        url: String,
        /// What the transport said.
        reason: String,
    },
    /// An error status, with the registry's own message.
    #[error("schema registry at {url} answered {status}: {body}")]
    Refused {
        /// The request's URL.
        url: String,
        /// HTTP status.
        status: u16,
        /// The answer's body (the registry's `{"error_code", "message"}`).
        body: String,
    },
    /// The CA certificates given to trust could not be used.
    #[error("the schema registry's CA certificates could not be read: {0}")]
    Trust(String),
    /// A 200 whose body is not what the API describes.
    #[error("schema registry at {url} gave an answer that cannot be read: {reason}")]
    BadAnswer {
        /// The request's URL.
        url: String,
        /// What was wrong with it.
        reason: String,
    },
}

/// A schema as the registry holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisteredSchema {
    /// `JSON`, `AVRO` or `PROTOBUF` (the registry leaves the field out for Avro).
    pub schema_type: String,
    /// The schema's text.
    pub schema: String,
}

#[derive(Deserialize)]
struct IdAnswer {
    id: u32,
}

#[derive(Deserialize)]
struct SchemaAnswer {
    schema: String,
    #[serde(rename = "schemaType")]
    schema_type: Option<String>,
}

/// What reaching a registry takes besides its URL: the CA certificates to trust and the
/// credentials to send.
#[derive(Clone, Default)]
pub struct RegistryAccess {
    /// PEM text of CA certificates trusted besides the system's (one or several); `None`: the
    /// system's trust store only.
    pub ca_pem: Option<String>,
    /// `user:password` sent as HTTP basic auth (an API key and its secret); `None`: none.
    pub user_info: Option<String>,
}

impl std::fmt::Debug for RegistryAccess {
    /// The credentials stay out of logs and error reports.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryAccess")
            .field("ca_pem", &self.ca_pem.as_ref().map(|_| "<PEM>"))
            .field("user_info", &self.user_info.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// A client of one registry.
pub struct SchemaRegistry {
    base: String,
    agent: ureq::Agent,
    /// The `Authorization` header's value, when credentials were given.
    authorization: Option<String>,
}

impl SchemaRegistry {
    /// A client of the registry at `base_url` (`http://` or `https://host:port`, with any path
    /// prefix), reached with `access` (the system's CAs and no credentials by default); each
    /// request gives up after `timeout`.
    pub fn new(
        base_url: &str,
        timeout: Duration,
        access: &RegistryAccess,
    ) -> Result<Self, RegistryError> {
        let mut tls = ureq::native_tls::TlsConnector::builder();
        if let Some(pem) = &access.ca_pem {
            let mut trusted = 0;
            for block in certificates(pem) {
                let cert = ureq::native_tls::Certificate::from_pem(block.as_bytes())
                    .map_err(|e| RegistryError::Trust(e.to_string()))?;
                tls.add_root_certificate(cert);
                trusted += 1;
            }
            if trusted == 0 {
                return Err(RegistryError::Trust("no PEM certificate in them".into()));
            }
        }
        let connector = tls
            .build()
            .map_err(|e| RegistryError::Trust(e.to_string()))?;
        let authorization = access.user_info.as_ref().map(|u| {
            let encoded = base64::engine::general_purpose::STANDARD.encode(u);
            format!("Basic {encoded}")
        });
        Ok(Self {
            base: base_url.trim_end_matches('/').to_string(),
            agent: ureq::AgentBuilder::new()
                .timeout(timeout)
                .tls_connector(Arc::new(connector))
                .build(),
            authorization,
        })
    }

    /// A request to `url` with the registry's media type accepted and the credentials set.
    fn request(&self, method: &str, url: &str) -> ureq::Request {
        let request = self.agent.request(method, url).set("Accept", MEDIA_TYPE);
        match &self.authorization {
            Some(value) => request.set("Authorization", value),
            None => request,
        }
    }

    /// Registers the JSON Schema `schema` under `subject` and returns its id (the existing id
    /// when the subject already holds the same schema).
    pub fn register_json(&self, subject: &str, schema: &str) -> Result<u32, RegistryError> {
        self.register(subject, "JSON", schema)
    }

    /// Registers the Avro schema `schema` under `subject` and returns its id, as
    /// [`Self::register_json`] does.
    pub fn register_avro(&self, subject: &str, schema: &str) -> Result<u32, RegistryError> {
        self.register(subject, "AVRO", schema)
    }

    /// Registers `schema` of `schema_type` (`JSON`, `AVRO`) under `subject`.
    fn register(
        &self,
        subject: &str,
        schema_type: &str,
        schema: &str,
    ) -> Result<u32, RegistryError> {
        let url = format!("{}/subjects/{}/versions", self.base, path_segment(subject));
        let body = json!({ "schemaType": schema_type, "schema": schema });
        let answer = self
            .request("POST", &url)
            .set("Content-Type", MEDIA_TYPE)
            .send_json(body);
        let IdAnswer { id } = read(&url, answer)?;
        Ok(id)
    }

    /// The schema registered with `id`.
    pub fn schema(&self, id: u32) -> Result<RegisteredSchema, RegistryError> {
        let url = format!("{}/schemas/ids/{id}", self.base);
        let answer = self.request("GET", &url).call();
        let SchemaAnswer {
            schema,
            schema_type,
        } = read(&url, answer)?;
        Ok(RegisteredSchema {
            schema_type: schema_type.unwrap_or_else(|| "AVRO".into()),
            schema,
        })
    }
}

/// The JSON body of a 200 answer, or why there is none.
fn read<T: serde::de::DeserializeOwned>(
    url: &str,
    answer: Result<ureq::Response, ureq::Error>,
) -> Result<T, RegistryError> {
    match answer {
        Ok(response) => response
            .into_json::<T>()
            .map_err(|e| RegistryError::BadAnswer {
                url: url.to_string(),
                reason: e.to_string(),
            }),
        Err(ureq::Error::Status(status, response)) => Err(RegistryError::Refused {
            url: url.to_string(),
            status,
            body: response.into_string().unwrap_or_default(),
        }),
        Err(ureq::Error::Transport(t)) => Err(RegistryError::Unreachable {
            url: url.to_string(),
            reason: t.to_string(),
        }),
    }
}

/// The PEM blocks of the certificates in `pem`, each with its BEGIN and END lines (a bundle
/// holds several; anything between them is left out).
fn certificates(pem: &str) -> impl Iterator<Item = String> + '_ {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    pem.split_inclusive(END).filter_map(|piece| {
        let start = piece.find(BEGIN)?;
        piece.ends_with(END).then(|| piece[start..].to_string())
    })
}

/// `subject` percent-encoded for a URL path segment (topic names allow only `[a-zA-Z0-9._-]`,
/// which pass unchanged; anything else is encoded byte by byte).
fn path_segment(subject: &str) -> String {
    let mut out = String::with_capacity(subject.len());
    for b in subject.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_are_encoded_as_one_path_segment() {
        assert_eq!(
            path_segment("shop.trend-updates_v1-value"),
            "shop.trend-updates_v1-value"
        );
        assert_eq!(path_segment("a/b c"), "a%2Fb%20c");
    }

    #[test]
    fn every_certificate_of_a_bundle_is_found() {
        let one = "-----BEGIN CERTIFICATE-----\nAAA\n-----END CERTIFICATE-----";
        let two = "-----BEGIN CERTIFICATE-----\nBBB\n-----END CERTIFICATE-----";
        let bundle = format!("# a comment\n{one}\nsubject=x\n{two}\n");
        assert_eq!(certificates(&bundle).collect::<Vec<_>>(), [one, two]);
        assert_eq!(certificates("no certificate here").count(), 0);
        let e = SchemaRegistry::new(
            "https://registry:8081",
            Duration::from_secs(1),
            &RegistryAccess {
                ca_pem: Some("not PEM".into()),
                user_info: None,
            },
        )
        .err()
        .expect("refused");
        assert!(matches!(e, RegistryError::Trust(_)), "{e}");
    }

    #[test]
    fn credentials_stay_out_of_debug_output() {
        let access = RegistryAccess {
            ca_pem: None,
            user_info: Some("KEY:SECRET".into()),
        };
        let shown = format!("{access:?}");
        assert!(
            !shown.contains("SECRET") && shown.contains("<redacted>"),
            "{shown}"
        );
    }

    #[test]
    fn an_unreachable_registry_is_an_error_naming_it() {
        // a port nothing listens on: connection refused
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        drop(listener);
        let registry = SchemaRegistry::new(
            &format!("http://{addr}"),
            Duration::from_secs(2),
            &RegistryAccess::default(),
        )
        .expect("client");
        let e = registry.register_json("t-value", "{}").unwrap_err();
        assert!(matches!(e, RegistryError::Unreachable { .. }), "{e}");
        assert!(e.to_string().contains(&addr.to_string()), "{e}");
    }
}

//! Webhook ingress: Standard Webhooks verification over the raw bytes, the event payloads, and
//! the one transaction that records a delivery with what detection made of it.

pub mod event;
pub mod ingest;
pub mod signature;

pub use event::{Event, EventError, PersonData};
pub use ingest::{ingest, Ingested};
pub use signature::{SecretError, VerifiedBody, Verifier, VerifyError, WebhookSecret};

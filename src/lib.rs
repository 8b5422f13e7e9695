//! # frameio-c2c
//!
//! A Frame.io Camera-to-Cloud (C2C) client for camera firmware: device pairing, tokens, device info and
//! heartbeat, asset creation (basic and real-time), comments, real-time part registration and part
//! uploads to presigned S3 URLs. It has a C ABI (see `include/frameio_c2c.h`, built from [`ffi`]) and is
//! usable from Rust directly through [`Client`].
//!
//! Data flows one way: C caller -> `ffi` (checks, converts) -> the plain Rust API (`auth`, `assets`,
//! `realtime`, `s3`, `upload`) -> `http` -> the network.
//!
//! ```no_run
//! use frameio_c2c::{Client, Config, AssetParams};
//! let client = Client::new(Config::new("unit-0001", "model-secret").with_client_version("1.2.3"))?;
//! let pairing = client.pairing_start()?;
//! println!("enter {} at {}", pairing.user_code, pairing.verification_uri);
//! let tokens = client.pairing_wait(&pairing)?;
//! # let _ = tokens;
//! let asset = client.create_asset(&AssetParams {
//!     name: Some("A001.mp4".into()), filetype: "video/mp4".into(), realtime: true, offset: Some(0),
//!     ..Default::default()
//! })?;
//! # let _ = asset;
//! # Ok::<(), frameio_c2c::Error>(())
//! ```

pub mod assets;
pub mod auth;
pub mod client;
pub mod config;
pub mod device;
pub mod error;
pub mod ffi;
pub(crate) mod http;
pub(crate) mod net;
pub mod realtime;
pub mod s3;
pub mod secret;
pub mod upload;

pub use assets::{Asset, AssetParams, Comment, MAX_FILE_SIZE};
pub use auth::{unix_now, Pairing, Tokens};
pub use client::Client;
pub use config::{Config, LogCallback, LogLevel, RetryPolicy, Timeouts, TokenCallback, DEFAULT_BASE_URL};
pub use device::DeviceInfo;
pub use error::{Error, ErrorKind, Result};
pub use realtime::{validate_parts, PartSpec, MAX_PART_NUMBER, MAX_PART_SIZE, MIN_PART_SIZE};
pub use s3::PartBody;

/// The crate version (same as `fio_version()`).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
